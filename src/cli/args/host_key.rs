//! `pam-totp host-key init|rotate|export|import`: the options of the host key pair's
//! subcommands.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::values::absolute_path;
use super::EXIT_STATUS_HELP;

/// `pam-totp host-key ...`
#[derive(Subcommand, Debug)]
pub enum HostKeyCommand {
    /// Create the host key pair: host.key (root, 0600) and host.pub (0644).
    #[command(
        long_about = "\
Create the host key pair that seals secrets: host.key (owned by root, mode
0600) and host.pub beside it (0644). Each file is written atomically, the
private key first. Refused if either exists, unless --if-missing (then it does
nothing, or only writes a missing host.pub from host.key) or --force.
It takes the lock `rotate` takes, and refuses while a `rotate` runs.

Root only.",
        after_help = EXIT_STATUS_HELP
    )]
    Init(HostKeyInitArgs),

    /// Make a new key pair and re-seal every sealed secret file to it.
    #[command(
        long_about = "\
Make a new host key pair and re-seal every sealed secret file to it. The
current private key is first kept as host.key.old, which the module still
uses, so logins keep working throughout. Then every secret file is looked
at: each account's file as the `secret` template of the config file and of
every pam_totp.so line in --pam-dir (its `secret=`, or its `config=` file's
`secret`) names it, for every account the passwd database enumerates
(getpwent), and every file in the system-wide directory (--secret-dir).
Sealed files are re-sealed in place, atomically, mode 0600, as `enroll`
writes them (under a home as its user); plain files are left untouched.

What it cannot see is counted and reported: accounts NSS does not enumerate
(SSSD or LDAP without enumeration), pam.d files it cannot read. Their files
may still be sealed to the old key.

host.key.old is kept unless --drop-old-key is given and every sealed file
found was re-sealed: a file that could not be (unreadable, altered, sealed
for another host) is reported and the exit status is 1. While host.key.old
exists, `rotate` finishes that rotation (re-seals again, and with
--drop-old-key removes host.key.old) instead of starting another.

Only one `host-key` command runs at a time: it takes a lock on the key's
directory (flock), and a second one refuses (exit status 1) while it is held.
Enrollments that seal (enroll, enroll --add, import-google, and the module's
enrollment at login) write nothing while it is held.

Root only.",
        after_help = EXIT_STATUS_HELP
    )]
    Rotate(HostKeyRotateArgs),

    /// Print the key pair (host.key and host.pub) on standard output, for other servers.
    #[command(
        long_about = "\
Print the host key pair on standard output, for `host-key import` on the
other servers of a fleet (one key pair per fleet, or per group of servers,
so a secret sealed on one opens on all). The output is three lines:

  # pam-totp host key pair <key id> (secret: ...)
  PAM-TOTP-HOST-KEY-1 <64 hex digits>   (host.key's text)
  PAM-TOTP-HOST-PUB-1 <64 hex digits>   (host.pub's text)

It is a secret: whoever has it opens every secret sealed to it. A warning
on standard error says so. host.key.old, if a rotation kept it, is not
printed. Root only.",
        after_help = EXIT_STATUS_HELP
    )]
    Export(HostKeyExportArgs),

    /// Install a key pair printed by `host-key export` as this host's.
    #[command(
        long_about = "\
Install a key pair printed by `host-key export` (FILE, or `-` for standard
input) as this host's host.key (root, 0600) and host.pub (0644), each
written atomically, the private key first, under the lock `init` and
`rotate` take.

FILE must not be a symlink and must give group and others no access (mode
0600 or stricter). Its private and public parts must match. Lines starting
with # and blank lines are ignored.

Importing the pair that is already installed changes nothing. An existing
different key is replaced only with --force, and then kept as host.key.old,
so the module still opens the secrets sealed to it (as `rotate` does);
`pam-totp host-key rotate --drop-old-key` then re-seals the files found
here to the imported key and removes host.key.old. Refused while
host.key.old exists (a rotation not finished). Root only.",
        after_help = EXIT_STATUS_HELP
    )]
    Import(HostKeyImportArgs),
}

/// Where the host key pair is.
#[derive(Args, Debug)]
pub struct HostKeyPath {
    /// The host's private key; host.pub is beside it [default: the config
    /// file's `host_key`, else /etc/pam-totp/host.key].
    #[arg(long, value_name = "PATH", value_parser = absolute_path)]
    pub host_key: Option<PathBuf>,

    /// The config file to read `host_key` (and, for rotate, `secret`) from
    /// [default: /etc/pam-totp/config.toml, if it exists].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct HostKeyInitArgs {
    #[command(flatten)]
    pub key: HostKeyPath,

    /// Do nothing if host.key exists (for package scripts); a missing
    /// host.pub is written from it.
    #[arg(long, conflicts_with = "force")]
    pub if_missing: bool,

    /// Replace an existing pair. Files sealed to the old key no longer open:
    /// to change the key of a host in use, run `rotate`.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct HostKeyRotateArgs {
    #[command(flatten)]
    pub key: HostKeyPath,

    /// The directory of system-wide secret files, each named after its user
    /// [default: /var/lib/pam-totp/secrets].
    #[arg(long, value_name = "DIR", value_parser = absolute_path)]
    pub secret_dir: Option<PathBuf>,

    /// The PAM configuration directory whose pam_totp.so lines' `secret=`
    /// (and `config=`) name more secret files [default: /etc/pam.d].
    #[arg(long, value_name = "DIR", value_parser = absolute_path)]
    pub pam_dir: Option<PathBuf>,

    /// Remove host.key.old at the end, if every sealed file found was
    /// re-sealed. Without it host.key.old is always kept.
    #[arg(long)]
    pub drop_old_key: bool,
}

#[derive(Args, Debug)]
pub struct HostKeyExportArgs {
    #[command(flatten)]
    pub key: HostKeyPath,
}

#[derive(Args, Debug)]
pub struct HostKeyImportArgs {
    #[command(flatten)]
    pub key: HostKeyPath,

    /// The key pair, as `host-key export` prints it; `-` reads standard input.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Replace an existing different key pair; the current private key is
    /// kept as host.key.old, so what is sealed to it still opens.
    #[arg(long)]
    pub force: bool,
}
