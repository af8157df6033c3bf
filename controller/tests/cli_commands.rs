//! The `heatctl` command line: check, curve, scada-map, config-ref, and run refusing a bad
//! configuration.

#[path = "peers/support.rs"]
mod support;

use support::*;

/// Write `text` to a temporary file `name` and run `heatctl check` on it, which must refuse it
/// with exit code 2: the file's path and the problems printed.
fn check_refuses(name: &str, text: &str) -> (String, String) {
    let file = temp_file(name, text).display().to_string();
    let (code, _, err) = heatctl(&["check", "--config", &file]);
    assert_eq!(code, 2, "{err}");
    (file, err)
}

fn example() -> String {
    format!(
        "{}/../config/substation.example.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Every line is `FILE:LINE:COL: ...` with numeric line and column.
fn assert_located(stderr: &str, file: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let rest = l
            .strip_prefix(file)
            .unwrap_or_else(|| panic!("not located: {l}"));
        let mut parts = rest.splitn(4, ':');
        assert_eq!(parts.next(), Some(""), "{l}");
        assert!(
            parts.next().is_some_and(|n| n.parse::<u32>().is_ok()),
            "line: {l}"
        );
        assert!(
            parts.next().is_some_and(|n| n.parse::<u32>().is_ok()),
            "column: {l}"
        );
    }
}

#[test]
fn check_accepts_the_example() {
    let (code, out, _) = heatctl(&["check", "--config", &example()]);
    assert_eq!(code, 0);
    assert!(out.contains("valid"));
}

#[test]
fn check_and_run_list_every_problem_and_exit_2() {
    let text = format!(
        "{HEAD}colour = \"red\"\n{}{}[points]\nt2_supply = \"nosuch.t2_supply\"\nvalve1_cmd = \"plc.valve1_cmd\"\n\
         [scada]\nmax_connections = \"many\"\n",
        link_toml("l", "tcp", 1502, 500),
        device_toml("plc", "l", 1, "substation-io.toml")
    );
    let (file, err) = check_refuses("bad.toml", &text);
    assert!(err.contains("colour"), "unknown key reported: {err}");
    assert!(
        err.contains("max_connections"),
        "wrong type reported: {err}"
    );
    assert_located(&err, &file);

    // A structurally valid file with an unknown device reference.
    let text = format!(
        "{HEAD}{}{}[points]\nt2_supply = \"nosuch.t2_supply\"\nvalve1_cmd = \"plc.valve1_cmd\"\n",
        link_toml("l", "tcp", 1502, 500),
        device_toml("plc", "l", 1, "substation-io.toml")
    );
    let (file, err) = check_refuses("badref.toml", &text);
    assert!(err.contains("nosuch"), "{err}");
    let (code, _, run_err) = heatctl(&["run", "--config", &file]);
    assert_eq!(code, 2, "run refuses at start: {run_err}");
    assert!(run_err.contains("nosuch"), "{run_err}");
}

#[test]
fn check_rejects_overlapping_writable_registers() {
    let map = "[device]\nmodel = \"m\"\n\
               [[points]]\nname = \"a\"\ntable = \"holding\"\naddress = 0\ntype = \"u32\"\nwritable = true\n\
               [[points]]\nname = \"b\"\ntable = \"holding\"\naddress = 1\ntype = \"u16\"\nwritable = true\n";
    let map_path = temp_file("overlap.toml", map);
    let text = format!(
        "{HEAD}{}[[devices]]\nname = \"d\"\nlink = \"l\"\nunit_id = 1\nmap = \"{}\"\n[points]\nt2_supply = \"d.a\"\nvalve1_cmd = \"d.b\"\n",
        link_toml("l", "tcp", 1502, 500),
        map_path.display()
    );
    let (_, err) = check_refuses("cfg.toml", &text);
    assert!(err.contains("overlaps"), "{err}");
}

#[test]
fn curve_table_and_svg() {
    let svg = temp_file("curve.svg", "");
    let (code, out, err) = heatctl(&[
        "curve",
        "--config",
        &example(),
        "--svg",
        &svg.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("| -30 | 75.0 |"), "{out}");
    assert!(out.contains("| 0 | 51.0 |"), "{out}");
    assert!(out.contains("| 20 | 25.0 |"), "{out}");
    let text = std::fs::read_to_string(&svg).expect("svg written");
    assert!(
        text.starts_with("<svg") && text.contains("<polyline"),
        "an SVG with a line"
    );
    let (_, fine, _) = heatctl(&["curve", "--config", &example(), "--step-k", "1"]);
    assert_eq!(fine.lines().count(), 2 + 51);
}

#[test]
fn scada_map_prints_the_table_the_slave_uses() {
    let (code, out, _) = heatctl(&["scada-map"]);
    assert_eq!(code, 0);
    assert_eq!(out, heatctl::scada::map::markdown());
    for r in heatctl::scada::map::HOLDING_REGISTERS {
        assert!(out.contains(r.name));
    }
}

#[test]
fn config_ref_prints_the_reference_from_the_schema() {
    let (code, out, _) = heatctl(&["config-ref"]);
    assert_eq!(code, 0);
    assert_eq!(out, heatctl::config::reference::markdown());
    assert!(out.contains("| `valve1.kp_pct_per_k` | number | %/K | `2.0` | 0 to 100 |"));
}
