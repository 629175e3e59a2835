//! The daemon's configuration as `toriid` loads it (`Config::load`): the main TOML file,
//! drop-ins from `toriid.d/` and `TORII__*` environment overrides, merged, then
//! validated. Never a panic; a rejected configuration names at least one issue.
//!
//! Input: parts separated by a line `%%%`. The first part is `toriid.toml`, every other
//! part a drop-in (`toriid.d/NN.toml`), except a part whose first line is `env`: its
//! other lines are `NAME=VALUE` variables. `@DIR@` stands for a scratch directory that
//! holds an existing driver (`@DIR@/drivers/sim.so`), trust store (`@DIR@/csca/`),
//! tokens file (`@DIR@/tokens.toml`, mode 0640) and card issuer key
//! (`@DIR@/issuer.pem`), so that seeds can reach the checks past "no such file".
#![no_main]
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use toriid::config::{Config, ConfigPaths};

const SEPARATOR: &str = "\n%%%\n";
/// A P-256 public key (SubjectPublicKeyInfo, PEM) made for this target (`openssl
/// ecparam -genkey`, private half thrown away): only its format is checked here.
const ISSUER_PEM: &str = include_str!("../fixtures/issuer.pem");
const TOKENS: &str = "[[token]]\nname = \"console-1\"\nrole = \"operator\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000001\"\n";

struct Scratch {
    /// Kept for the process's life (removed at exit).
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let root = dir.path().to_path_buf();
        std::fs::create_dir_all(root.join("drivers")).expect("drivers dir");
        std::fs::create_dir_all(root.join("csca")).expect("trust store dir");
        std::fs::create_dir_all(root.join("state")).expect("state dir");
        std::fs::write(
            root.join("drivers/sim.so"),
            b"not loaded by the config check",
        )
        .expect("driver");
        std::fs::write(root.join("issuer.pem"), ISSUER_PEM).expect("issuer key");
        let tokens = root.join("tokens.toml");
        std::fs::write(&tokens, TOKENS).expect("tokens");
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o640)).expect("mode");
        std::fs::create_dir_all(root.join("conf/toriid.d")).expect("drop-in dir");
        Scratch { _dir: dir, root }
    })
}

fn write_inputs(conf: &Path, text: &str) -> Vec<(String, String)> {
    let drop_ins = conf.join("toriid.d");
    for entry in std::fs::read_dir(&drop_ins)
        .expect("the drop-in dir")
        .flatten()
    {
        let _ = std::fs::remove_file(entry.path());
    }
    let mut env = Vec::new();
    let mut parts = text.split(SEPARATOR);
    std::fs::write(conf.join("toriid.toml"), parts.next().unwrap_or_default()).expect("main file");
    for (i, part) in parts.enumerate() {
        if let Some(vars) = part.strip_prefix("env\n") {
            for line in vars.lines() {
                if let Some((name, value)) = line.split_once('=') {
                    env.push((name.to_owned(), value.to_owned()));
                }
            }
        } else {
            std::fs::write(drop_ins.join(format!("{i:02}.toml")), part).expect("drop-in");
        }
    }
    env
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let scratch = scratch();
    let root = scratch.root.to_str().expect("a UTF-8 temporary path");
    let text = text.replace("@DIR@", root);
    let conf = scratch.root.join("conf");
    let env = write_inputs(&conf, &text);
    match Config::load(&ConfigPaths::for_file(conf.join("toriid.toml")), env) {
        Ok(config) => {
            let _ = config.summary();
            assert!(
                !config.sources.is_empty(),
                "a loaded configuration names its files"
            );
        }
        Err(error) => {
            assert!(
                !error.issues().is_empty(),
                "a rejected configuration says why"
            );
            let _ = error.to_string();
        }
    }
});
