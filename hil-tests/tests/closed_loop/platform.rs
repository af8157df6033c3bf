//! The platform link of `heatctl run` (the rig: the release binary against the plant
//! simulator, `closed_loop/rig.rs`) with a real Mosquitto: commands through the one gate,
//! refused without change (SCADA registers and the audit log in the state directory read
//! back), a good setting and a good configuration applied.

use crate::broker::{Broker, Sub, mosquitto_available, publish};
use crate::rig::*;
use serde_json::Value as Json;

const BASE: &str = "heatctl/rig/st1";

async fn wait_sub(sub: &Sub, limit: Duration, mut f: impl FnMut(&Sub) -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f(sub) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f(sub)
}

fn ack<'a>(acks: &'a [Json], id: &str) -> Option<&'a Json> {
    acks.iter().find(|a| a["id"] == id)
}

fn audit_lines(rig: &Rig) -> Vec<Json> {
    std::fs::read_to_string(rig.dir.path().join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn platform_commands_go_through_the_gate_of_a_running_station() {
    if !mosquitto_available() {
        return;
    }
    let _slots = rig_slots(1);
    let broker = Broker::start("");
    let sub = Sub::start(broker.port, "heatctl/#");
    let url = broker.url();
    block_on(async {
        let sc = scenario("demo", -10.0);
        let mut rig = Rig::start_with(
            "platform-commands",
            &sc,
            constant_weather_base(),
            60.0,
            |t| {
                set(t, "platform.enabled", true);
                set(
                    t,
                    "platform.brokers",
                    Value::Array(vec![url.clone().into()]),
                );
                set(t, "platform.site_id", "rig");
                set(t, "platform.station_id", "st1");
                set(t, "platform.telemetry_period_s", 30.0);
            },
        )
        .await;
        assert!(
            wait_sub(&sub, Duration::from_secs(20), |s| !s
                .json("/state")
                .is_empty())
            .await,
            "no state from the station: {}",
            rig.log()
        );
        let p = broker.port;
        let cmd = |name: &str| format!("{BASE}/cmd/{name}");
        // A configuration with errors: every problem in the ack, nothing written.
        let before = std::fs::read_to_string(&rig.config_path).expect("config");
        publish(
            p,
            &cmd("config"),
            br#"{"id":"c1","toml":"[site]\nname = 3\n[curve]\nbogus_key = 1\n"}"#,
            false,
        );
        publish(
            p,
            &cmd("curve_shift_k"),
            br#"{"id":"r1","value":99}"#,
            false,
        );
        publish(
            p,
            &cmd("valve1_manual_pct"),
            br#"{"id":"n1","value":10}"#,
            false,
        );
        assert!(
            wait_sub(&sub, Duration::from_secs(20), |s| {
                let a = s.json("/ack");
                ["c1", "r1", "n1"].iter().all(|id| ack(&a, id).is_some())
            })
            .await,
            "acks missing: {:?}",
            sub.json("/ack")
        );
        let acks = sub.json("/ack");
        let c1 = ack(&acks, "c1").expect("c1");
        assert_eq!(c1["accepted"], false);
        let problems = c1["problems"].as_array().expect("problems");
        assert!(problems.len() >= 2, "{c1}");
        assert!(
            problems
                .iter()
                .any(|p| p.as_str().is_some_and(|p| p.contains("site.name"))),
            "{c1}"
        );
        assert_eq!(ack(&acks, "r1").expect("r1")["accepted"], false);
        // Not in platform.writable.
        let n1 = ack(&acks, "n1").expect("n1");
        assert_eq!(n1["accepted"], false, "{n1}");
        assert_eq!(
            std::fs::read_to_string(&rig.config_path).expect("config"),
            before,
            "a refused configuration was written"
        );
        let scada = rig.read_scada().await.expect("SCADA");
        assert_eq!(scada.base_shift_k(), Some(0.0));
        let audit = audit_lines(&rig);
        assert!(
            audit
                .iter()
                .filter(|a| a["source"] == "platform" && a["result"] == "refused")
                .count()
                >= 3,
            "{audit:?}"
        );

        // A good setting: applied, audited old -> new, in force on the SCADA registers.
        publish(
            p,
            &cmd("curve_shift_k"),
            br#"{"id":"g1","value":2.0}"#,
            false,
        );
        assert!(
            wait_sub(&sub, Duration::from_secs(20), |s| ack(
                &s.json("/ack"),
                "g1"
            )
            .is_some())
            .await
        );
        let acks = sub.json("/ack");
        let g1 = ack(&acks, "g1").expect("g1");
        assert_eq!(g1["accepted"], true, "{g1}");
        assert_eq!(
            (g1["old"].as_f64(), g1["new"].as_f64()),
            (Some(0.0), Some(2.0))
        );
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if rig.read_scada().await.and_then(|s| s.base_shift_k()) == Some(2.0) {
                break;
            }
            assert!(
                Instant::now() < end,
                "the shift did not reach the controller"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(audit_lines(&rig).iter().any(|a| a["source"] == "platform"
            && a["what"] == "curve_shift_k"
            && a["result"] == "accepted"
            && a["new"].as_f64() == Some(2.0)));

        // A good configuration (the file in force with another telemetry period): applied,
        // the previous file kept, the new hash in the ack and on /state.
        let text = std::fs::read_to_string(&rig.config_path).expect("config");
        let mut table: Table = text.parse().expect("toml");
        set(&mut table, "platform.telemetry_period_s", 20.0);
        let new_text = toml::to_string(&table).expect("toml");
        let body = serde_json::json!({"id": "c2", "toml": new_text}).to_string();
        publish(p, &cmd("config"), body.as_bytes(), false);
        assert!(
            wait_sub(&sub, Duration::from_secs(30), |s| ack(
                &s.json("/ack"),
                "c2"
            )
            .is_some())
            .await,
            "no answer to a good configuration: {}",
            rig.log()
        );
        let acks = sub.json("/ack");
        let c2 = ack(&acks, "c2").expect("c2");
        assert_eq!(c2["accepted"], true, "{c2}");
        assert_ne!(c2["old"], c2["new"]);
        let mut prev = rig.config_path.clone().into_os_string();
        prev.push(".prev");
        assert_eq!(std::fs::read_to_string(prev).expect(".prev kept"), text);
        assert!(
            wait_sub(&sub, Duration::from_secs(20), |s| s
                .json("/state")
                .iter()
                .any(|st| st["config_hash"] == c2["new"]))
            .await
        );
        rig.check_alive();
        rig.finish().await;
    });
}
