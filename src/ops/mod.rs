//! Operations the command line and the app both offer, above the engine modules: each takes
//! typed options, does its work through `train`, `task`, `array` and `store`, and returns a
//! serialisable report that `cli` prints and `gui` shows. Neither front end orchestrates
//! the engine itself.

pub mod inspect;
