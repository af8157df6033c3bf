//! The `heatctl` command.

fn main() {
    println!("heatctl {}", env!("CARGO_PKG_VERSION"));
}
