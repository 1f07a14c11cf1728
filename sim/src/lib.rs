//! The Spine simulation harness; arrives with the simulator issue.
