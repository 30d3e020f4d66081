//! The QR code `enroll` draws is read by a real decoder (zbarimg, from
//! Debian's zbar-tools): the drawing is turned into an image as a terminal
//! shows it, decoded, and compared with the URI and the secret printed.

mod cli_support;
mod common;
mod ns_support;
use cli_support::*;

/// Enrolls with `extra` options, decodes the QR code drawn in `style`,
/// and checks it against the printed URI and secret. Returns the URI.
fn enroll_and_decode(sb: &Sandbox, name: &str, style: &str, extra: &[&str]) -> String {
    let file = sb.join(name);
    let file = file.to_str().unwrap();
    let config = sb.config();
    let mut args = vec![
        "enroll",
        "--config",
        &config,
        "--secret-file",
        file,
        "--no-confirm",
        "--qr",
        style,
    ];
    args.extend_from_slice(extra);
    let r = run(&args, "");
    assert_eq!(r.code, 0, "{r:?}");
    let lines = qr_lines(&r.stdout);
    let rows = match style {
        "utf8" => modules_utf8(&lines),
        "ansi" => modules_ansi(&lines),
        _ => unreachable!(),
    };
    let decoded = zbar_decode(&rows, sb.path());
    let printed_uri = field(&r.stdout, "URI");
    assert_eq!(decoded, printed_uri, "the QR code holds exactly the URI");
    let secret: String = field(&r.stdout, "secret").split(' ').collect();
    let groups: Vec<&str> = field(&r.stdout, "secret").split(' ').collect();
    let (last, full) = groups.split_last().unwrap();
    assert!(
        full.iter().all(|g| g.len() == 4) && (1..=4).contains(&last.len()),
        "groups of four: {groups:?}"
    );
    assert!(
        decoded.contains(&format!("?secret={secret}&")),
        "{decoded} / {secret}"
    );
    decoded
}

#[test]
fn utf8_half_blocks_decode_to_the_uri() {
    let sb = Sandbox::new("");
    let uri = enroll_and_decode(
        &sb,
        "a",
        "utf8",
        &["--issuer", "Example", "--label", "alice"],
    );
    assert!(
        uri.starts_with("otpauth://totp/Example:alice?secret="),
        "{uri}"
    );
    assert!(uri.ends_with("&issuer=Example"), "{uri}");
    // 160 bits: 32 base32 characters.
    let secret = &uri["otpauth://totp/Example:alice?secret=".len()..][..32];
    assert!(secret
        .bytes()
        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
}

#[test]
fn ansi_colours_decode_to_the_uri() {
    let sb = Sandbox::new("");
    let uri = enroll_and_decode(
        &sb,
        "b",
        "ansi",
        &[
            "--secret",
            "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
            "--issuer",
            "Ex",
        ],
    );
    let host = std::process::Command::new("hostname")
        .output()
        .unwrap()
        .stdout;
    let host = String::from_utf8(host).unwrap();
    assert_eq!(
        uri,
        format!(
            "otpauth://totp/Ex:root@{}?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Ex",
            host.trim()
        )
    );
}

#[test]
fn non_default_parameters_and_encoded_names_survive_the_qr_code() {
    let sb = Sandbox::new("");
    let uri = enroll_and_decode(
        &sb,
        "c",
        "utf8",
        &[
            "--secret",
            "jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp",
            "--issuer",
            "ACME Co & Söhne",
            "--label",
            "bob@example.com",
            "--algorithm",
            "sha512",
            "--digits",
            "8",
            "--period",
            "60",
        ],
    );
    assert_eq!(
        uri,
        "otpauth://totp/ACME%20Co%20%26%20S%C3%B6hne:bob@example.com\
         ?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=ACME%20Co%20%26%20S%C3%B6hne\
         &algorithm=SHA512&digits=8&period=60"
    );
}

#[test]
fn no_qr_code_with_qr_none() {
    let sb = Sandbox::new("");
    let file = sb.join("d");
    let r = run(
        &[
            "enroll",
            "--config",
            &sb.config(),
            "--secret-file",
            file.to_str().unwrap(),
            "--no-confirm",
            "--qr",
            "none",
        ],
        "",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("Scan this QR code"), "{r:?}");
    assert!(!r.stdout.contains('█'));
    assert!(field(&r.stdout, "URI").starts_with("otpauth://totp/"));
}

/// Issue 11, item 12: every test above passes also where /etc/pam-totp
/// holds a host key pair and a config.toml that would change its outcome.
#[test]
fn passes_on_a_machine_with_pam_totp_configured() {
    ns_support::rerun_on_a_configured_machine("passes_on_a_machine_with_pam_totp_configured");
}
