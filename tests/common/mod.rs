//! Shared fixtures of the integration tests.

/// A project holding the `size`³ demo data (seed 1), without runs.
pub fn demo_data_project(size: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    segno::demo::generate(
        dir.path(),
        &segno::demo::DemoOptions {
            seed: 1,
            size,
            overwrite: false,
        },
    )
    .unwrap();
    dir
}
