//! Compiles the C drivers in c/ into shared libraries (and the ABI layout probe into an
//! executable) with the system C compiler, against sdk/include only — exactly what an
//! OEM's build does.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let include = manifest.join("../../../sdk/include");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let compiler = cc::Build::new().get_compiler();
    for header in ["torii/driver.h", "torii/matcher.h"] {
        println!("cargo:rerun-if-changed={}", include.join(header).display());
    }

    let outputs = [
        ("demo_code_reader", "libtorii_demo_code_reader.so", true),
        ("fixture_wrong_abi", "libtorii_fixture_wrong_abi.so", true),
        (
            "fixture_crashy_camera",
            "libtorii_fixture_crashy_camera.so",
            true,
        ),
        ("abi_layout_probe", "torii_abi_layout_probe", false),
        (
            "demo_finger_matcher",
            "libtorii_demo_finger_matcher.so",
            true,
        ),
        (
            "fixture_wrong_abi_matcher",
            "libtorii_fixture_wrong_abi_matcher.so",
            true,
        ),
    ];
    for (source, output, shared) in outputs {
        let source = manifest.join("c").join(format!("{source}.c"));
        println!("cargo:rerun-if-changed={}", source.display());
        let mut command = compiler.to_command();
        command.args([
            "-std=c11",
            "-D_DEFAULT_SOURCE",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pthread",
        ]);
        if shared {
            command.args(["-shared", "-fPIC"]);
        }
        command
            .arg("-I")
            .arg(&include)
            .arg("-o")
            .arg(out.join(output))
            .arg(&source);
        if shared {
            // The example matcher uses fabs(); harmless for the others.
            command.arg("-lm");
        }
        let status = run(&mut command);
        if !status {
            panic!(
                "compiling {} failed (see the compiler output above)",
                source.display()
            );
        }
    }
}

fn run(command: &mut Command) -> bool {
    match command.status() {
        Ok(status) => status.success(),
        Err(e) => panic!("cannot run the C compiler: {e}"),
    }
}
