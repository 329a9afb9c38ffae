//! The Python and npm packages carry the crate's version: the npm launcher and every platform
//! package have it, the launcher pins each platform package to exactly it, and the wheel takes
//! it from the crate. A release that bumps one and not the others fails here, not on a user's
//! machine with a launcher that cannot find its binary.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/npm")
}

fn manifest(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("package.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_npm_packages_carry_the_crate_version_and_the_launcher_pins_every_platform() {
    let version = env!("CARGO_PKG_VERSION");
    let launcher = manifest(&packaging().join("orchestration-mcp"));
    assert_eq!(launcher["name"], "orchestration-mcp");
    assert_eq!(launcher["version"], version);
    assert_eq!(
        launcher["bin"]["orchestration-mcp"],
        "bin/orchestration-mcp.js"
    );

    let mut platforms = Vec::new();
    for entry in std::fs::read_dir(packaging()).unwrap() {
        let dir = entry.unwrap().path();
        if dir.file_name().unwrap() == "orchestration-mcp" {
            continue;
        }
        let platform = manifest(&dir);
        assert_eq!(platform["version"], version, "{}", dir.display());
        assert!(
            platform["files"]
                .as_array()
                .unwrap()
                .contains(&"bin/orchestration-mcp".into()),
            "{} ships the binary where the launcher looks",
            dir.display()
        );
        platforms.push(platform["name"].as_str().unwrap().to_owned());
    }
    platforms.sort();
    let optional = launcher["optionalDependencies"].as_object().unwrap();
    let pinned: Vec<_> = optional.keys().cloned().collect();
    assert_eq!(
        pinned, platforms,
        "one optional dependency per platform package"
    );
    for (name, pin) in optional {
        assert_eq!(
            pin, version,
            "{name} is pinned to exactly the crate's version"
        );
    }
    let script =
        std::fs::read_to_string(packaging().join("orchestration-mcp/bin/orchestration-mcp.js"))
            .unwrap();
    for name in &platforms {
        assert!(
            script.contains(&format!("\"{name}\"")),
            "the launcher knows {name}"
        );
    }
}

#[test]
fn the_wheel_takes_its_version_from_the_crate() {
    let pyproject =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("pyproject.toml"))
            .unwrap();
    assert!(
        pyproject.contains("\ndynamic = [\"version\"]\n"),
        "{pyproject}"
    );
    assert!(!pyproject.contains("\nversion ="), "no version of its own");
    assert!(pyproject.contains("\nbindings = \"bin\"\n"), "{pyproject}");
}
