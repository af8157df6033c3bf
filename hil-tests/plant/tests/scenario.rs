//! Scenario loading and validation.

use std::path::Path;

use heatctl_plant::{FaultKind, Plant, Scenario};

fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

#[test]
fn shipped_scenarios_load() {
    let d = Scenario::shipped("default").expect("default.toml");
    assert_eq!(d.apartment_count(), 600);
    assert!(!d.buildings.balanced);
    let s = Scenario::load(&dir().join("small.toml"), None).expect("small.toml");
    assert!(s.household_valves.enabled);
    assert_eq!(s.faults.len(), 3);
    assert_eq!(s.faults[1].kind, FaultKind::DeviceSlow);
    let plant = Plant::new(&d).expect("default plant");
    let nodes = plant.room_node_count();
    assert_eq!(nodes, 120, "20 % of 600");
    // Every top- and ground-floor end unit has a node.
    for a in plant.apartments() {
        if a.is_end_unit && (a.floor == 0 || a.floor == 14) {
            assert!(a.room_node.is_some(), "apartment {} has no node", a.index);
        }
    }
}

#[test]
fn weather_override_and_env_dir() {
    let w = Path::new(env!("CARGO_MANIFEST_DIR")).join("../weather/weather-chicago.csv");
    let s = Scenario::from_toml_str(
        "[weather]\nfile = \"nowhere/weather-hohhot-synthetic.csv\"\n",
        &dir(),
        Some(&w),
        "<test>",
    )
    .expect("override used");
    assert_eq!(s.weather_path.as_deref(), Some(w.as_path()));
    let err = Scenario::from_toml_str(
        "[weather]\nfile = \"nowhere/none.csv\"\n",
        &dir(),
        None,
        "<test>",
    )
    .expect_err("missing weather file");
    assert!(
        err.problems().iter().any(|p| p.path == "weather.file"),
        "{err}"
    );
}

#[test]
fn every_problem_is_listed_with_its_path() {
    let text = r#"
name = "broken"
colour = "blue"

[buildings]
count = "ten"

[season]
length_days = 183.0
startday = 3

[room_nodes]
share_pct = 150.0

[time]
step_s = -1.0

[[faults]]
kind = "device_slow"
target = "heat_meter"
start_h = 1.0
duration_h = 1.0

[[faults]]
kind = "sensor_jump"
target = "t9_supply"
start_h = 1.0
duration_h = 1.0

[[faults]]
kind = "meteor_strike"
target = "t_out"
start_h = 1.0
duration_h = 1.0
"#;
    let err = Scenario::from_toml_str(text, &dir(), None, "broken.toml").expect_err("invalid");
    let msg = err.to_string();
    println!("{msg}");
    let problems = err.problems();
    let has = |path: &str| problems.iter().find(|p| p.path == path);
    for path in [
        "colour",
        "buildings.count",
        "season.startday",
        "room_nodes.share_pct",
        "time.step_s",
        "faults[0].delay_ms",
        "faults[1].target",
        "faults[1].jump",
        "faults[2].kind",
    ] {
        assert!(
            has(path).is_some(),
            "no problem reported at `{path}`:\n{msg}"
        );
    }
    // Type errors carry the line and column of the offending value.
    let b = has("buildings.count").expect("buildings problem");
    assert_eq!(b.line, Some(6), "{b}");
    assert!(
        b.message.contains("invalid type") || b.message.contains("string"),
        "{b}"
    );
    let s = has("season.startday").expect("season problem");
    assert!(s.message.contains("startday"), "{s}");
    assert_eq!(s.line, Some(10), "{s}");
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let err = Scenario::from_toml_str("[buildings\ncount = 3\n", &dir(), None, "x.toml")
        .expect_err("syntax");
    let p = &err.problems()[0];
    assert_eq!(p.line, Some(1), "{p}");
}

#[test]
fn the_readme_example_is_a_valid_scenario() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let start = readme.find("```toml\n").expect("toml block") + 8;
    let end = start + readme[start..].find("```").expect("block end");
    let s = Scenario::from_toml_str(&readme[start..end], &dir(), None, "README.md")
        .expect("README example is valid");
    assert_eq!(s.faults.len(), 1);
    assert_eq!(s.faults[0].kind, FaultKind::SensorDrift);
}

#[test]
fn hydraulics_problems_are_listed_with_their_paths() {
    let text = r#"
[buildings]
count = 3

[substation]
pump2_ramp_pct_s = 0.0
pump_head_kpa = -5.0

[household_valves]
authority = 1.0

[hydraulics]
fouling_min = 0.9
fouling_max = 0.8
roughness_mm = 0.0
index_building = 3
pump_efficiency = 1.2
"#;
    let err = Scenario::from_toml_str(text, &dir(), None, "<test>").expect_err("invalid");
    let paths: Vec<&str> = err.problems().iter().map(|p| p.path.as_str()).collect();
    for want in [
        "substation.pump2_ramp_pct_s",
        "substation.pump_head_kpa",
        "household_valves.authority",
        "hydraulics.fouling_min",
        "hydraulics.roughness_mm",
        "hydraulics.index_building",
        "hydraulics.pump_efficiency",
    ] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
    assert_eq!(err.problems().len(), 7, "{err}");
    // An unknown key is reported with its position.
    let err = Scenario::from_toml_str("[hydraulics]\nstairwells = 2\n", &dir(), None, "<test>")
        .expect_err("unknown key");
    let unknown = err
        .problems()
        .iter()
        .find(|p| p.message.contains("stairwells"))
        .expect("unknown field reported");
    assert!(unknown.line.is_some(), "{unknown:?}");
    // The older `buildings.balanced` still balances the network.
    let s = Scenario::from_toml_str("[buildings]\nbalanced = true\n", &dir(), None, "<test>")
        .expect("valid");
    assert!(s.balanced_at_commissioning());
    assert_eq!(s.index_building(), 9, "the farthest of the default 10");
}
