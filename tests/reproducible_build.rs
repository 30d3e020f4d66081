//! The shipped module and its TLS library build reproducibly (issue 17):
//! two copies of this source tree in two different directories, each built
//! as the package builds it (`--profile dist`, the flags of
//! `scripts/dist-rustflags`, which debian/rules uses too, and the C flags
//! dpkg-buildpackage exports, which ring's C code is compiled with), each
//! with a target directory of its own, give byte-identical `libpam_totp.so`
//! and `libpam_totp_tls.so` files; and none holds a path of the build
//! machine: the checkout, the target directory, the cargo registry
//! (`$CARGO_HOME`), the toolchain, or a home directory.
//!
//! Only the libraries are built (scripts/build-libraries, as debian/rules
//! builds them: `--no-default-features --lib`): the tool's own crates are
//! not in them. The two builds share nothing but the downloaded crate
//! sources, so the test costs two builds of both (a few minutes on two
//! CPUs).
//!
//! The same test checks what the build's linker (scripts/link-static-unwind)
//! promises: both libraries carry their own unwinder (no libgcc_s.so.1, no
//! `_Unwind_` import), and a panic in either built that way (one more,
//! incremental build of each with its test-only `panic-probe` feature) is
//! still caught: at the PAM edge in the module, at the C interface in the
//! TLS library.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::Fixture;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of the source tree at `dest`, without build output or history.
fn copy_tree(dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    let script = "tar --exclude=./target --exclude=./.git --exclude=./fuzz/target \
                  --exclude=./fuzz/artifacts --exclude=./fuzz/corpus -cf - . | tar -xf - -C \"$1\"";
    let st = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(dest)
        .current_dir(root())
        .status()
        .expect("sh");
    assert!(st.success(), "copying the tree to {}", dest.display());
}

/// The C/C++/linker flags dpkg-buildpackage exports for debian/rules
/// (`DEB_BUILD_MAINT_OPTIONS=hardening=+all`, as debian/rules sets it),
/// computed in `src` as dpkg does: `cc` compiles ring's C code with them.
fn debian_build_flags(src: &Path) -> Vec<(String, String)> {
    ["CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS"]
        .into_iter()
        .map(|name| {
            let out = Command::new("dpkg-buildflags")
                .args(["--get", name])
                .env("DEB_BUILD_MAINT_OPTIONS", "hardening=+all")
                .current_dir(src)
                .output()
                .expect("dpkg-buildflags (apt-get install dpkg-dev)");
            assert!(out.status.success(), "dpkg-buildflags --get {name}");
            let value = String::from_utf8(out.stdout).unwrap();
            (name.to_owned(), value.trim().to_owned())
        })
        .collect()
}

/// The libraries the package ships, as cargo names them.
const SHIPPED: [&str; 2] = ["libpam_totp.so", "libpam_totp_tls.so"];

/// The environment of the package's build of `src` into `target`: the
/// flags of dpkg-buildpackage and of scripts/dist-rustflags.
fn dist_env(src: &Path, target: &Path) -> Vec<(String, String)> {
    let flags = Command::new(src.join("scripts/dist-rustflags"))
        .arg(src)
        .arg(target)
        .output()
        .expect("scripts/dist-rustflags");
    assert!(flags.status.success(), "{flags:?}");
    let flags = String::from_utf8(flags.stdout).unwrap();
    let mut env = debian_build_flags(src);
    env.push(("RUSTFLAGS".into(), flags.trim().to_owned()));
    env.push(("SOURCE_DATE_EPOCH".into(), "1700000000".into()));
    env
}

/// Runs `cmd` in `src` with the package's build environment; panics with
/// its output if it fails.
fn run_build(mut cmd: Command, src: &Path, target: &Path) {
    let out = cmd
        .current_dir(src)
        .envs(dist_env(src, target))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .output()
        .expect("build");
    assert!(
        out.status.success(),
        "build in {} failed:\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the module and its TLS library from `src` into `target` as the
/// package does (scripts/build-libraries, which debian/rules runs); the
/// built files, in the order of [`SHIPPED`].
fn build_libraries(src: &Path, target: &Path) -> Vec<PathBuf> {
    let mut cmd = Command::new(src.join("scripts/build-libraries"));
    cmd.arg(target);
    run_build(cmd, src, target);
    SHIPPED
        .iter()
        .map(|name| {
            let so = target.join("dist").join(name);
            assert!(so.exists(), "{} missing", so.display());
            so
        })
        .collect()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The paths of this machine that must not be in a shipped binary.
fn machine_paths(src: &Path, target: &Path) -> Vec<String> {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{home}/.cargo"));
    let mut v = vec![
        src.display().to_string(),
        target.display().to_string(),
        root().display().to_string(),
        cargo_home,
        "/root/".into(),
        "/home/".into(),
        "/.cargo/".into(),
        "/.rustup/".into(),
    ];
    if home != "/" {
        v.push(format!("{home}/"));
    }
    v
}

#[test]
fn two_builds_in_two_directories_are_identical_and_hold_no_build_path() {
    let tmp = tempfile::Builder::new()
        .prefix("pamtotp-repro.")
        .tempdir()
        .unwrap();
    let t = tmp.path();
    // Different names and depths; one target inside its checkout (as
    // debian/rules has it), one outside.
    let (src_a, target_a) = (t.join("a/pam-totp"), t.join("a/pam-totp/target"));
    let (src_b, target_b) = (t.join("bb/other/checkout"), t.join("out-b"));
    copy_tree(&src_a);
    copy_tree(&src_b);
    let built_a = build_libraries(&src_a, &target_a);
    let built_b = build_libraries(&src_b, &target_b);
    for ((name, so_a), so_b) in SHIPPED.iter().zip(&built_a).zip(&built_b) {
        let (a, b) = (fs::read(so_a).unwrap(), fs::read(so_b).unwrap());
        for (bytes, src, target) in [(&a, &src_a, &target_a), (&b, &src_b, &target_b)] {
            for p in machine_paths(src, target) {
                assert!(
                    !contains(bytes, &p),
                    "{name} built in {} holds the path {p:?}",
                    src.display()
                );
            }
        }
        assert_eq!(a.len(), b.len(), "the two builds of {name} differ in size");
        let first = a.iter().zip(&b).position(|(x, y)| x != y);
        assert!(
            first.is_none(),
            "the two builds of {name} differ from byte {first:?} on"
        );
        // The figures docs/benchmarks.md records; not a limit (see there).
        eprintln!("{name} (dist profile, stripped): {} bytes", a.len());
        assert_own_unwinder(so_a);
        assert_packed_relocations(so_a);
    }
    a_panic_in_the_shipped_build_is_caught(&src_a, &target_a);
    a_panic_in_the_shipped_tls_library_is_caught(&src_a, &target_a);
}

fn output_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A shipped library carries its own unwinder (scripts/link-static-unwind):
/// it needs no libgcc_s.so.1, which sshd and sudo do not load, and imports
/// no `_Unwind_` function, so unwinding in it can only use its own copy.
fn assert_own_unwinder(so: &Path) {
    let dynamic = output_of(Command::new("readelf").arg("-d").arg(so));
    assert!(dynamic.contains("(NEEDED)"), "{dynamic}");
    assert!(
        !dynamic.contains("libgcc_s"),
        "{} needs libgcc_s:\n{dynamic}",
        so.display()
    );
    let undefined = output_of(Command::new("nm").args(["-D", "--undefined-only"]).arg(so));
    assert!(undefined.contains("malloc"), "{undefined}");
    assert!(
        !undefined.contains("_Unwind_"),
        "{} imports the unwinder:\n{undefined}",
        so.display()
    );
}

/// A shipped library packs its relative relocations (DT_RELR, from
/// scripts/dist-rustflags): a few hundred bytes where RELA entries took
/// 50 KB of the module; full RELRO stays.
fn assert_packed_relocations(so: &Path) {
    let dynamic = output_of(Command::new("readelf").arg("-d").arg(so));
    assert!(
        dynamic.contains("(RELR)"),
        "{} has no packed relocations:\n{dynamic}",
        so.display()
    );
    assert!(dynamic.contains("BIND_NOW"), "{dynamic}");
    let relocs = output_of(Command::new("readelf").arg("-r").arg(so));
    let relative = relocs.matches("R_X86_64_RELATIVE").count();
    assert!(
        relative < 100,
        "{}: {relative} relative relocations left unpacked",
        so.display()
    );
}

/// Builds one shipped library again, as scripts/build-libraries links it,
/// with its test-only `panic-probe` feature (`package`: the cargo package
/// options; incremental in `target`, where the shipped build ran); checks
/// it carries its own unwinder and returns `TARGET/dist/NAME`.
fn build_probe(src: &Path, target: &Path, package: &[&str], name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["rustc", "--profile", "dist", "--locked"])
        .args(package)
        .args(["--features", "panic-probe", "--lib", "--target-dir"])
        .arg(target)
        .arg("--")
        .arg("-C")
        .arg(format!(
            "linker={}",
            src.join("scripts/link-static-unwind").display()
        ));
    run_build(cmd, src, target);
    let probe = target.join("dist").join(name);
    assert_own_unwinder(&probe);
    probe
}

/// Compiles the C program `source` into `out`, linked with `lib`.
fn compile_c(source: &Path, out: &Path, lib: &str) {
    output_of(
        Command::new("cc")
            .args(["-O2", "-Wall", "-Werror", "-o"])
            .arg(out)
            .arg(source)
            .arg(lib),
    );
}

/// A C program that loads the TLS library given and asks it for a
/// session to the server name given (no CA): prints the library's code.
const TLS_PROBE_C: &str = r#"
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
typedef void *(*new_fn)(const uint8_t *, size_t, const uint8_t *, size_t, uint32_t *);
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    new_fn tls_new = (new_fn)dlsym(lib, "pam_totp_tls_new");
    if (tls_new == NULL) return 1;
    uint32_t code = 99;
    void *session = tls_new((const uint8_t *)argv[2], strlen(argv[2]), (const uint8_t *)"", 0, &code);
    printf("%u %s\n", code, session == NULL ? "null" : "session");
    return 0;
}
"#;

/// The TLS library built as scripts/build-libraries builds it, with its
/// `panic-probe` feature (a session to `panic-probe.invalid` panics):
/// loaded by a C program, as the module is loaded into sshd (no
/// libgcc_s in the process), the panic is stopped at its C interface by
/// its own unwinder and reported as its internal-error code (4); another
/// name gets the ordinary answer for no CA (1).
fn a_panic_in_the_shipped_tls_library_is_caught(src: &Path, target: &Path) {
    let probe = build_probe(src, target, &["-p", "pam-totp-tls"], "libpam_totp_tls.so");

    let dir = tempfile::tempdir().unwrap();
    let c_source = dir.path().join("tls_probe.c");
    fs::write(&c_source, TLS_PROBE_C).unwrap();
    let program = dir.path().join("tls_probe");
    compile_c(&c_source, &program, "-ldl");
    let ask = |server: &str| output_of(Command::new(&program).arg(&probe).arg(server));
    assert_eq!(ask("panic-probe.invalid"), "4 null\n");
    assert_eq!(ask("example.org"), "1 null\n");
}

/// The module built as scripts/build-libraries builds it, with the
/// `panic-probe` feature (its `panic_probe` argument panics in
/// pam_sm_authenticate): the panic is stopped at the PAM edge by the
/// module's own unwinder, logged, and the login denied, in a Rust client
/// (which has libgcc_s loaded: the module does not use it) and in a C one
/// as sshd is (no libgcc_s in the process at all). Were the unwinder
/// unable to unwind the module's frames, the process would abort.
fn a_panic_in_the_shipped_build_is_caught(src: &Path, target: &Path) {
    let package = ["-p", "pam-totp", "--no-default-features"];
    let probe = build_probe(src, target, &package, "libpam_totp.so");

    let fx = Fixture::new();
    fs::copy(&probe, fx.path().join("pam_totp.so")).unwrap();
    let svc = fx.service("probe", &["auth required MODULE panic_probe"]);
    let r = fx.client(&svc, "root").syslog().run();
    assert_eq!(r.result, "PAM_AUTH_ERR", "{r:?}");
    assert!(
        r.syslog
            .iter()
            .any(|l| l.contains("internal error (panic) in pam_sm_authenticate; denying")),
        "{r:?}"
    );

    let c_client = fx.path().join("pam_login");
    compile_c(&root().join("examples/c/pam_login.c"), &c_client, "-lpam");
    let out = output_of(
        Command::new(&c_client)
            .arg("--confdir")
            .arg(fx.path().join("pam.d"))
            .args(["--service", &svc, "--user", "root"]),
    );
    assert!(out.contains("\"result\":\"PAM_AUTH_ERR\""), "{out}");
}
