//! `spine-sim`: see the library's documentation.

fn main() {
    println!("spine-sim: under construction");
}
