//! Bad configurations, one per row: each must be refused with a message that names the
//! file (or environment variable) and the key at fault. Plus the good cases around
//! them: merge order, environment overrides, the shipped file.

use std::path::{Path, PathBuf};
use std::process::Command;

use toriid::config::{Config, ConfigError, ConfigPaths};

/// A config directory in a temp dir: `toriid.toml`, `toriid.d/`, a fake driver file.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(main: &str, drop_ins: &[(&str, &str)]) -> Setup {
        let setup = Setup {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(setup.driver(), b"not really a driver").unwrap();
        std::fs::write(setup.main(), setup.expand(main)).unwrap();
        std::fs::create_dir_all(setup.path().join("toriid.d")).unwrap();
        for (name, text) in drop_ins {
            std::fs::write(setup.drop_in(name), setup.expand(text)).unwrap();
        }
        setup.write_token_files();
        setup
    }

    /// API tokens files for `[http] tokens_file`: `tokens.toml` (good, mode 0600),
    /// `tokens-open.toml` (mode 0644), `tokens-bad.toml` (an unknown role).
    fn write_token_files(&self) {
        use std::os::unix::fs::PermissionsExt as _;
        let entry = |role: &str| {
            format!(
                "[[token]]\nname = \"console-1\"\nrole = \"{role}\"\nsha256 = \"{}\"\n",
                toriid::api::auth::hash_token("torii_test")
            )
        };
        for (name, text, mode) in [
            ("tokens.toml", entry("operator"), 0o600),
            ("tokens-open.toml", entry("operator"), 0o644),
            ("tokens-bad.toml", entry("admin"), 0o600),
        ] {
            let path = self.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn main(&self) -> PathBuf {
        self.path().join("toriid.toml")
    }

    fn drop_in(&self, name: &str) -> PathBuf {
        self.path().join("toriid.d").join(name)
    }

    fn driver(&self) -> PathBuf {
        self.path().join("libdriver.so")
    }

    fn expand(&self, text: &str) -> String {
        text.replace("{DIR}", &self.path().display().to_string())
            .replace("{DRIVER}", &self.driver().display().to_string())
    }

    fn load(&self, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load(&ConfigPaths::for_file(self.main()), env)
    }

    /// Where an error is expected to point.
    fn origin(&self, origin: &Origin) -> String {
        match origin {
            Origin::Main => self.main().display().to_string(),
            Origin::DropIn(name) => self.drop_in(name).display().to_string(),
            Origin::Env(name) => format!("environment {name}"),
        }
    }
}

const BASE: &str = r#"
[gate]
id = "NRT-T1-E01"
lane = "entry"

[paths]
runtime_dir = "{DIR}/run"

[http]
listen = "127.0.0.1:8770"
socket = "{DIR}/run/api.sock"

[devices.camera]
class = "camera"
driver = "{DRIVER}"
isolation = "process"
call_timeout_ms = 3000

[devices.camera.config]
socket = "/run/torii-sim/camera.sock"
"#;

enum Origin {
    Main,
    DropIn(&'static str),
    Env(&'static str),
}

struct Case {
    name: &'static str,
    /// Replacements applied to [`BASE`] for the main file.
    main_edits: &'static [(&'static str, &'static str)],
    drop_ins: &'static [(&'static str, &'static str)],
    env: &'static [(&'static str, &'static str)],
    origin: Origin,
    key: &'static str,
    /// A fragment of the message.
    says: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "bad type",
        main_edits: &[("call_timeout_ms = 3000", "call_timeout_ms = \"fast\"")],
        drop_ins: &[],
        env: &[],
        origin: Origin::Main,
        key: "devices.camera.call_timeout_ms",
        says: "expected an integer, found string \"fast\"",
    },
    Case {
        name: "unknown key in a drop-in",
        main_edits: &[],
        drop_ins: &[(
            "10-vendor.toml",
            "[devices.camera]\nisolaton = \"process\"\n",
        )],
        env: &[],
        origin: Origin::DropIn("10-vendor.toml"),
        key: "devices.camera.isolaton",
        says: "unknown key",
    },
    Case {
        name: "unknown section in a drop-in",
        main_edits: &[],
        drop_ins: &[("20-site.toml", "[gat]\nid = \"X\"\n")],
        env: &[],
        origin: Origin::DropIn("20-site.toml"),
        key: "gat",
        says: "unknown key (expected one of gate, paths, http, log, registry, central, outbox, audit, flow, documents, usb, matcher, dbus, devices)",
    },
    Case {
        name: "port that is not an airport code",
        main_edits: &[],
        drop_ins: &[("30-port.toml", "[gate]\nport = \"Narita\"\n")],
        env: &[],
        origin: Origin::DropIn("30-port.toml"),
        key: "gate.port",
        says: "not a 3-letter airport code",
    },
    Case {
        name: "period of stay that TTP does not grant",
        main_edits: &[],
        drop_ins: &[(
            "40-stay.toml",
            "[flow.stay]\nby_nationality = { THA = 45 }\n",
        )],
        env: &[],
        origin: Origin::DropIn("40-stay.toml"),
        key: "flow.stay.by_nationality.THA",
        says: "45 days for THA",
    },
    Case {
        name: "card issuer key that does not exist",
        main_edits: &[],
        drop_ins: &[(
            "50-registry.toml",
            "[registry]\ncard_issuer_key = \"{DIR}/missing.pem\"\n",
        )],
        env: &[],
        origin: Origin::DropIn("50-registry.toml"),
        key: "registry.card_issuer_key",
        says: "no such file",
    },
    Case {
        name: "card issuer key that is not a key",
        main_edits: &[],
        drop_ins: &[(
            "50-registry.toml",
            "[registry]\ncard_issuer_key = \"{DRIVER}\"\n",
        )],
        env: &[],
        origin: Origin::DropIn("50-registry.toml"),
        key: "registry.card_issuer_key",
        says: "not a P-256 public key",
    },
    Case {
        name: "a false match rate the matcher is not calibrated for",
        main_edits: &[],
        drop_ins: &[("60-matcher.toml", "[matcher]\ntarget_fmr = 0.5\n")],
        env: &[],
        origin: Origin::DropIn("60-matcher.toml"),
        key: "matcher.target_fmr",
        says: "not a false match rate",
    },
    Case {
        name: "a bind mode that does not exist",
        main_edits: &[],
        drop_ins: &[("10-vendor.toml", "[devices.camera]\nbind = \"bluetooth\"\n")],
        env: &[],
        origin: Origin::DropIn("10-vendor.toml"),
        key: "devices.camera.bind",
        says: "expected one of always, usb",
    },
    Case {
        name: "fingerprint attempts out of range",
        main_edits: &[],
        drop_ins: &[],
        env: &[("TORII__FLOW__FINGER_ATTEMPTS", "0")],
        origin: Origin::Env("TORII__FLOW__FINGER_ATTEMPTS"),
        key: "flow.finger_attempts",
        says: "out of range",
    },
    Case {
        name: "bad enum value in a drop-in",
        main_edits: &[],
        drop_ins: &[(
            "10-vendor.toml",
            "[devices.camera]\nisolation = \"sandbox\"\n",
        )],
        env: &[],
        origin: Origin::DropIn("10-vendor.toml"),
        key: "devices.camera.isolation",
        says: "unknown value \"sandbox\", expected one of in-process, process",
    },
    Case {
        name: "central over plain HTTP",
        main_edits: &[],
        drop_ins: &[(
            "40-central.toml",
            "[central]\nurl = \"http://central:80\"\n",
        )],
        env: &[],
        origin: Origin::DropIn("40-central.toml"),
        key: "central.url",
        says: "not an https://host:port address",
    },
    Case {
        name: "central without its client certificate",
        main_edits: &[],
        drop_ins: &[],
        env: &[("TORII__CENTRAL__URL", "https://127.0.0.1:8443")],
        origin: Origin::Env("TORII__CENTRAL__URL"),
        key: "central.client_certificate",
        says: "required when central.url is set",
    },
    Case {
        name: "batch larger than central accepts",
        main_edits: &[],
        drop_ins: &[(
            "40-central.toml",
            "[central]\nurl = \"https://127.0.0.1:1\"\nbatch = 501\n",
        )],
        env: &[],
        origin: Origin::DropIn("40-central.toml"),
        key: "central.batch",
        says: "out of range (1 to 500)",
    },
    Case {
        name: "central settings without its url",
        main_edits: &[],
        drop_ins: &[("40-central.toml", "[central]\nca = \"/etc/ssl/ca.pem\"\n")],
        env: &[],
        origin: Origin::DropIn("40-central.toml"),
        key: "central.ca",
        says: "has no effect without central.url",
    },
    Case {
        name: "missing outbox key file",
        main_edits: &[],
        drop_ins: &[],
        env: &[("TORII__OUTBOX__KEY_FILE", "/nonexistent/outbox.key")],
        origin: Origin::Env("TORII__OUTBOX__KEY_FILE"),
        key: "outbox.key_file",
        says: "no such file",
    },
    Case {
        name: "staleness limit too short",
        main_edits: &[],
        drop_ins: &[("50-registry.toml", "[registry]\nmax_staleness_ms = 5\n")],
        env: &[],
        origin: Origin::DropIn("50-registry.toml"),
        key: "registry.max_staleness_ms",
        says: "out of range",
    },
    Case {
        name: "bad lane",
        main_edits: &[("lane = \"entry\"", "lane = \"both\"")],
        drop_ins: &[],
        env: &[],
        origin: Origin::Main,
        key: "gate.lane",
        says: "expected one of entry, exit",
    },
    Case {
        name: "bad class",
        main_edits: &[],
        drop_ins: &[("10-vendor.toml", "[devices.camera]\nclass = \"scanner\"\n")],
        env: &[],
        origin: Origin::DropIn("10-vendor.toml"),
        key: "devices.camera.class",
        says: "unknown value \"scanner\"",
    },
    Case {
        name: "missing driver file",
        main_edits: &[("driver = \"{DRIVER}\"", "driver = \"{DIR}/libmissing.so\"")],
        drop_ins: &[],
        env: &[],
        origin: Origin::Main,
        key: "devices.camera.driver",
        says: "does not exist",
    },
    Case {
        name: "missing required key",
        main_edits: &[("id = \"NRT-T1-E01\"", "")],
        drop_ins: &[],
        env: &[],
        origin: Origin::Main,
        key: "gate.id",
        says: "missing",
    },
    Case {
        name: "bad listen address",
        main_edits: &[],
        drop_ins: &[("30-net.toml", "[http]\nlisten = \"localhost:99999\"\n")],
        env: &[],
        origin: Origin::DropIn("30-net.toml"),
        key: "http.listen",
        says: "invalid address \"localhost:99999\"",
    },
    Case {
        name: "listen address off the machine",
        main_edits: &[("127.0.0.1:8770", "0.0.0.0:8770")],
        drop_ins: &[],
        env: &[],
        origin: Origin::Main,
        key: "http.listen",
        says: "not a loopback address",
    },
    Case {
        name: "API tokens file others can read",
        main_edits: &[],
        drop_ins: &[(
            "30-api.toml",
            "[http]\ntokens_file = \"{DIR}/tokens-open.toml\"\n",
        )],
        env: &[],
        origin: Origin::DropIn("30-api.toml"),
        key: "http.tokens_file",
        says: "tokens-open.toml has mode 0644",
    },
    Case {
        name: "API tokens file with an unknown role",
        main_edits: &[],
        drop_ins: &[(
            "30-api.toml",
            "[http]\ntokens_file = \"{DIR}/tokens-bad.toml\"\n",
        )],
        env: &[],
        origin: Origin::DropIn("30-api.toml"),
        key: "http.tokens_file",
        says: "token 1 (\"console-1\"): unknown role \"admin\"",
    },
    Case {
        name: "missing API tokens file",
        main_edits: &[],
        drop_ins: &[],
        env: &[("TORII__HTTP__TOKENS_FILE", "/nonexistent/tokens.toml")],
        origin: Origin::Env("TORII__HTTP__TOKENS_FILE"),
        key: "http.tokens_file",
        says: "no such file",
    },
    Case {
        name: "socket in a missing directory",
        main_edits: &[("{DIR}/run/api.sock", "{DIR}/nowhere/api.sock")],
        drop_ins: &[],
        env: &[],
        origin: Origin::Main,
        key: "http.socket",
        says: "does not exist",
    },
    Case {
        name: "bad log level",
        main_edits: &[],
        drop_ins: &[("40-log.toml", "[log]\nlevel = \"loud=[\"\n")],
        env: &[],
        origin: Origin::DropIn("40-log.toml"),
        key: "log.level",
        says: "invalid level",
    },
    Case {
        name: "environment override of a bad value",
        main_edits: &[],
        drop_ins: &[],
        env: &[("TORII__DEVICES__CAMERA__ISOLATION", "sandbox")],
        origin: Origin::Env("TORII__DEVICES__CAMERA__ISOLATION"),
        key: "devices.camera.isolation",
        says: "unknown value \"sandbox\"",
    },
    Case {
        name: "environment override of the wrong type",
        main_edits: &[],
        drop_ins: &[],
        env: &[("TORII__DEVICES__CAMERA__CALL_TIMEOUT_MS", "soon")],
        origin: Origin::Env("TORII__DEVICES__CAMERA__CALL_TIMEOUT_MS"),
        key: "devices.camera.call_timeout_ms",
        says: "expected an integer",
    },
    Case {
        name: "environment override of an unknown key",
        main_edits: &[],
        drop_ins: &[],
        env: &[("TORII__HTTP__LISTN", "127.0.0.1:1")],
        origin: Origin::Env("TORII__HTTP__LISTN"),
        key: "http.listn",
        says: "unknown key",
    },
    Case {
        name: "environment override of a bad listen address",
        main_edits: &[],
        drop_ins: &[],
        env: &[("TORII__HTTP__LISTEN", "nonsense")],
        origin: Origin::Env("TORII__HTTP__LISTEN"),
        key: "http.listen",
        says: "invalid address",
    },
    Case {
        name: "a D-Bus bus that is not an address",
        main_edits: &[],
        drop_ins: &[("70-dbus.toml", "[dbus]\nbus = \"system-bus\"\n")],
        env: &[],
        origin: Origin::DropIn("70-dbus.toml"),
        key: "dbus.bus",
        says: "\"system-bus\" is not \"system\", \"session\" or a D-Bus address",
    },
    Case {
        name: "a D-Bus name that is not a well-known name",
        main_edits: &[],
        drop_ins: &[],
        env: &[("TORII__DBUS__NAME", "torii")],
        origin: Origin::Env("TORII__DBUS__NAME"),
        key: "dbus.name",
        says: "\"torii\" is not a well-known bus name",
    },
    Case {
        name: "a D-Bus switch that is not a boolean",
        main_edits: &[],
        drop_ins: &[],
        env: &[("TORII__DBUS__ENABLED", "sometimes")],
        origin: Origin::Env("TORII__DBUS__ENABLED"),
        key: "dbus.enabled",
        says: "expected a boolean",
    },
    Case {
        name: "a D-Bus operators group that is not a group name",
        main_edits: &[],
        drop_ins: &[(
            "70-dbus.toml",
            "[dbus]\noperators_group = \"torii operators\"\n",
        )],
        env: &[],
        origin: Origin::DropIn("70-dbus.toml"),
        key: "dbus.operators_group",
        says: "is not a group name",
    },
    Case {
        name: "device id unusable in URLs",
        main_edits: &[
            ("[devices.camera]", "[devices.Camera]"),
            ("[devices.camera.config]", "[devices.Camera.config]"),
        ],
        drop_ins: &[],
        env: &[],
        origin: Origin::Main,
        key: "devices.Camera",
        says: "invalid device id",
    },
];

#[test]
fn every_bad_config_names_its_file_and_key() {
    for case in CASES {
        let mut main = BASE.to_owned();
        for (from, to) in case.main_edits {
            assert!(
                main.contains(from),
                "{}: edit {from:?} does not apply",
                case.name
            );
            main = main.replace(from, to);
        }
        let setup = Setup::new(&main, case.drop_ins);
        let error = match setup.load(case.env) {
            Ok(_) => panic!("{}: accepted", case.name),
            Err(e) => e,
        };
        let expected_prefix = format!("{}: {}: ", setup.origin(&case.origin), case.key);
        let message = error.to_string();
        let line = message
            .lines()
            .find(|line| line.starts_with(&expected_prefix))
            .unwrap_or_else(|| {
                panic!(
                    "{}: no line starts with {expected_prefix:?} in:\n{message}",
                    case.name
                )
            });
        assert!(
            line.contains(case.says),
            "{}: {line:?} does not say {:?}",
            case.name,
            case.says
        );
    }
}

#[test]
fn the_documented_example_message_is_exact() {
    let setup = Setup::new(
        BASE,
        &[(
            "10-vendor.toml",
            "[devices.camera]\nisolation = \"sandbox\"\n",
        )],
    );
    let error = setup.load(&[]).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}: devices.camera.isolation: unknown value \"sandbox\", expected one of in-process, process",
            setup.drop_in("10-vendor.toml").display()
        )
    );
}

#[test]
fn a_toml_syntax_error_names_the_file() {
    let setup = Setup::new(BASE, &[("10-broken.toml", "[http\nlisten = 1\n")]);
    let message = setup.load(&[]).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "{}: invalid TOML",
            setup.drop_in("10-broken.toml").display()
        )),
        "{message}"
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let setup = Setup::new(
        &BASE.replace("lane = \"entry\"", "lane = \"both\""),
        &[(
            "10-vendor.toml",
            "[devices.camera]\nisolation = \"sandbox\"\n",
        )],
    );
    assert_eq!(setup.load(&[]).unwrap_err().issues().len(), 2);
}

#[test]
fn a_good_config_loads_with_defaults() {
    let setup = Setup::new(BASE, &[]);
    let config = setup.load(&[]).unwrap();
    assert_eq!(config.gate.id, "NRT-T1-E01");
    assert_eq!(config.http.listen, Some("127.0.0.1:8770".parse().unwrap()));
    assert_eq!(config.paths.state_dir, PathBuf::from("/var/lib/torii"));
    let camera = &config.devices[0];
    assert_eq!(camera.id, "camera");
    assert!(camera.enabled);
    assert_eq!(camera.call_timeout.as_millis(), 3000);
    // The driver's table is handed over as JSON, as is.
    assert_eq!(
        camera.config_json,
        r#"{"socket":"/run/torii-sim/camera.sock"}"#
    );
    assert_eq!(config.sources, vec![setup.main()]);
}

#[test]
fn d_bus_defaults_to_the_system_bus_and_takes_an_address() {
    use toriid::config::DbusBus;
    let setup = Setup::new(BASE, &[]);
    let dbus = setup.load(&[]).unwrap().dbus;
    assert!(dbus.enabled);
    assert_eq!(dbus.bus, DbusBus::System);
    assert_eq!(dbus.name, "org.torii.Gate1");
    assert_eq!(dbus.operators_group, "torii-operators");
    let setup = Setup::new(
        BASE,
        &[(
            "70-dbus.toml",
            "[dbus]\nbus = \"unix:path=/run/dbus/system_bus_socket\"\noperators_group = \"\"\n",
        )],
    );
    let dbus = setup
        .load(&[("TORII__DBUS__ENABLED", "false")])
        .unwrap()
        .dbus;
    assert!(!dbus.enabled);
    assert_eq!(
        dbus.bus,
        DbusBus::Address("unix:path=/run/dbus/system_bus_socket".into())
    );
    assert_eq!(dbus.operators_group, "");
}

#[test]
fn drop_ins_apply_in_name_order_and_the_environment_last() {
    let setup = Setup::new(
        BASE,
        &[
            (
                "20-later.toml",
                "[devices.camera]\nisolation = \"in-process\"\n[devices.camera.config]\nport = 9\n",
            ),
            (
                "10-earlier.toml",
                "[devices.camera]\nisolation = \"sandbox\"\ncall_timeout_ms = 100\n",
            ),
            ("README", "not toml, ignored"),
        ],
    );
    // The bad value in 10-earlier.toml is overridden by 20-later.toml: valid.
    let config = setup
        .load(&[
            ("TORII__HTTP__LISTEN", ""),
            ("TORII__DEVICES__CAMERA__ENABLED", "false"),
        ])
        .unwrap();
    let camera = &config.devices[0];
    assert_eq!(camera.isolation, torii_plugin_host::Isolation::InProcess);
    assert_eq!(camera.call_timeout.as_millis(), 100);
    assert!(!camera.enabled);
    assert_eq!(config.http.listen, None);
    let json: serde_json::Value = serde_json::from_str(&camera.config_json).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"socket": "/run/torii-sim/camera.sock", "port": 9})
    );
    assert_eq!(config.sources.len(), 3);
    assert!(config.sources[1].ends_with("10-earlier.toml"));
}

#[test]
fn api_tokens_are_read_with_the_configuration() {
    let setup = Setup::new(
        BASE,
        &[(
            "30-api.toml",
            "[http]\ntokens_file = \"{DIR}/tokens.toml\"\n",
        )],
    );
    let config = setup.load(&[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.http.tokens_file,
        Some(setup.path().join("tokens.toml"))
    );
    let [token] = config.http.tokens.as_slice() else {
        panic!("{:?}", config.http.tokens)
    };
    assert_eq!(
        (token.name.as_str(), token.role),
        ("console-1", toriid::command::Role::Operator)
    );
    // None by default.
    let config = Setup::new(BASE, &[]).load(&[]).unwrap();
    assert_eq!(
        (config.http.tokens_file, config.http.tokens.len()),
        (None, 0)
    );
}

#[test]
fn a_disabled_device_may_name_a_missing_driver() {
    let setup = Setup::new(
        &BASE.replace(
            "driver = \"{DRIVER}\"",
            "driver = \"/nonexistent/lib.so\"\nenabled = false",
        ),
        &[],
    );
    assert!(setup.load(&[]).is_ok());
}

fn shipped_config() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/toriid.toml"))
        .unwrap()
}

#[test]
fn the_shipped_config_is_valid() {
    let setup = Setup::new(&shipped_config(), &[]);
    let config = setup.load(&[]).unwrap();
    assert_eq!(
        config.http.socket,
        Some(PathBuf::from("/run/torii/api.sock"))
    );
    assert!(config.devices.is_empty());
}

/// The commented-out example devices are valid too, once uncommented (with driver
/// paths pointing at files that exist here).
#[test]
fn the_shipped_example_devices_are_valid() {
    let shipped = shipped_config();
    let (head, rest) = shipped.split_once("# --- example devices ---\n").unwrap();
    let (examples, _) = rest.split_once("# --- end of example devices ---").unwrap();
    let mut text = head.to_owned();
    for line in examples.lines() {
        let line = line.strip_prefix('#').unwrap_or(line);
        text.push_str(line.strip_prefix(' ').unwrap_or(line));
        text.push('\n');
    }
    let setup = Setup::new("", &[]);
    let drivers = setup.path().join("drivers");
    std::fs::create_dir_all(&drivers).unwrap();
    for entry in text
        .lines()
        .filter_map(|l| l.strip_prefix("driver = \"/usr/lib/torii/drivers/"))
    {
        std::fs::write(drivers.join(entry.trim_end_matches('"')), b"").unwrap();
    }
    std::fs::write(
        setup.main(),
        text.replace(
            "/usr/lib/torii/drivers/",
            &format!("{}/", drivers.display()),
        ),
    )
    .unwrap();
    let config = setup.load(&[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.devices.len(), 7);
    let classes: Vec<_> = config.devices.iter().map(|d| d.class.name()).collect();
    assert!(
        classes
            .iter()
            .all(|class| config.devices.iter().any(|d| d.id == *class))
    );
}

#[test]
fn check_config_exits_0_or_2_with_the_errors() {
    let exe = env!("CARGO_BIN_EXE_toriid");
    let good = Setup::new(BASE, &[]);
    let output = Command::new(exe)
        .args(["check-config", "--config"])
        .arg(good.main())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("configuration OK"));

    let bad = Setup::new(
        BASE,
        &[(
            "10-vendor.toml",
            "[devices.camera]\nisolation = \"sandbox\"\n",
        )],
    );
    let output = Command::new(exe)
        .args(["check-config", "--config"])
        .arg(bad.main())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("10-vendor.toml: devices.camera.isolation: unknown value \"sandbox\""),
        "{stderr}"
    );

    let output = Command::new(exe)
        .args(["check-config", "--config"])
        .arg(good.main())
        .env("TORII__GATE__LANE", "sideways")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("environment TORII__GATE__LANE: gate.lane: unknown value")
    );
}
