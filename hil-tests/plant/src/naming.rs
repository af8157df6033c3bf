//! How the plant's devices are named in a heatctl configuration: building tags, link names,
//! room-node ids and position classes. The demo, the closed-loop rig and the season scorecard
//! all name the plant through these functions, so one scheme holds everywhere.
//!
//! | what | name |
//! |---|---|
//! | building `b` (0-based) | `bNN`, NN = b + 1, two digits at least |
//! | its room-node bus | `rooms-bNN` |
//! | its household-valve bus | `valves-bNN` |
//! | the room node of floor `f` (0 = ground), unit `u` (0-based) | `bNN-FFUU`, FF = f + 1, UU = u + 1 |
//! | the substation I/O link / device | `plant_io` / `plc` |
//! | the heat meter link / device | `plant_meter` / `meter` |

use heatctl_core::config::{Position, RoomNode};

use crate::plant::{Plant, PositionClass};

/// Link of the substation I/O.
pub const IO_LINK: &str = "plant_io";
/// Link of the heat meter.
pub const METER_LINK: &str = "plant_meter";
/// Device name of the substation I/O.
pub const IO_DEVICE: &str = "plc";
/// Device name of the heat meter.
pub const METER_DEVICE: &str = "meter";

/// Building tag, 1-based: building 0 is `b01`.
#[must_use]
pub fn building_tag(building: usize) -> String {
    format!("b{:02}", building + 1)
}

/// Name of building `building`'s room-node link (`rooms-b01` for building 0).
#[must_use]
pub fn room_link_name(building: usize) -> String {
    format!("rooms-{}", building_tag(building))
}

/// Name of building `building`'s household-valve link (`valves-b01` for building 0).
#[must_use]
pub fn valve_link_name(building: usize) -> String {
    format!("valves-{}", building_tag(building))
}

/// Room node id of the flat on `floor` (0 = ground) and `unit` (0-based) of `building`:
/// `b01-1502` is building 0, 15th floor, 2nd flat.
#[must_use]
pub fn room_node_id(building: usize, floor: usize, unit: usize) -> String {
    format!("{}-{:02}{:02}", building_tag(building), floor + 1, unit + 1)
}

/// The configuration's position of a flat from the plant's position class.
#[must_use]
pub fn position(class: PositionClass, end_unit: bool) -> Position {
    match (class, end_unit) {
        (PositionClass::Top, false) => Position::Top,
        (PositionClass::Top, true) => Position::TopEnd,
        (PositionClass::Ground, false) => Position::Ground,
        (PositionClass::Ground, true) => Position::GroundEnd,
        (PositionClass::End, _) => Position::End,
        (PositionClass::Middle, _) => Position::Middle,
    }
}

/// heatctl's room nodes for the plant's room nodes, in the plant's node order (configured node
/// `k` is plant node `k`): id, building, position, the building's room link and the node's unit
/// id; with `with_valves`, the household valve on the building's valve link at the same unit id
/// (the valve gateway answers unit 1 + the flat's index in its building, as the room gateway
/// does).
#[must_use]
pub fn room_nodes(plant: &Plant, with_valves: bool) -> Vec<RoomNode> {
    let apartments = plant.apartments();
    (0..plant.room_node_count())
        .filter_map(|k| plant.room_node(k))
        .map(|r| {
            let end_unit = apartments.get(r.apartment).is_some_and(|a| a.is_end_unit);
            RoomNode {
                id: room_node_id(r.building, r.floor, r.unit),
                building: building_tag(r.building),
                position: position(r.position, end_unit),
                link: room_link_name(r.building),
                unit_id: r.unit_id,
                topic: None,
                json_field: None,
                time_field: None,
                vacant: false,
                excluded: false,
                valve_link: with_valves.then(|| valve_link_name(r.building)),
                valve_unit_id: with_valves.then_some(r.unit_id),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_based_and_two_digit() {
        assert_eq!(building_tag(0), "b01");
        assert_eq!(building_tag(11), "b12");
        assert_eq!(room_link_name(2), "rooms-b03");
        assert_eq!(valve_link_name(0), "valves-b01");
        assert_eq!(room_node_id(0, 14, 1), "b01-1502");
    }

    #[test]
    fn every_position_class_maps() {
        assert_eq!(position(PositionClass::Top, true), Position::TopEnd);
        assert_eq!(position(PositionClass::Ground, false), Position::Ground);
        assert_eq!(position(PositionClass::End, true), Position::End);
        assert_eq!(position(PositionClass::Middle, false), Position::Middle);
    }
}
