//! The chunk statistics view: each layer's chunks by state (queued, loading, in the CPU
//! cache, in GPU memory, missing on screen, failed), with both memories' use against their
//! budgets, as neuroglancer's statistics panel shows them.

use eframe::egui;

use crate::render::cache::CacheStats;
use crate::render::gpu_gather::GpuStoreStats;

use super::ChunkStatistics;

/// Bytes as MiB with one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// Draws the statistics: a row per layer, then the two memories' totals (`gpu` is `None`
/// without a GPU renderer).
pub fn ui(
    ui: &mut egui::Ui,
    rows: &[ChunkStatistics],
    cpu: &CacheStats,
    gpu: Option<&GpuStoreStats>,
) {
    egui::Grid::new("chunk-statistics")
        .striped(true)
        .show(ui, |ui| {
            for h in [
                "layer",
                "queued",
                "loading",
                "in memory",
                "on the GPU",
                "missing",
                "failed",
            ] {
                ui.label(egui::RichText::new(h).strong());
            }
            ui.end_row();
            for r in rows {
                ui.label(&r.layer);
                ui.label(r.queued.to_string());
                ui.label(r.loading.to_string());
                ui.label(format!("{} ({})", r.in_memory, mib(r.in_memory_bytes)));
                ui.label(format!("{} ({})", r.on_gpu, mib(r.on_gpu_bytes)));
                ui.label(r.missing.to_string());
                ui.label(r.failed.to_string());
                ui.end_row();
            }
        });
    ui.label(format!(
        "CPU cache: {} chunks, {} of {}; {} read{}",
        cpu.chunks,
        mib(cpu.bytes as u64),
        mib(cpu.budget_bytes as u64),
        cpu.completed,
        if cpu.view_moving {
            ", at low priority while the view moves"
        } else {
            ""
        }
    ));
    match gpu {
        Some(g) => ui.label(format!(
            "GPU memory: {} chunks, {} of {}; {} uploaded, {} evicted, {} refused",
            g.chunks,
            mib(g.bytes),
            mib(g.budget_bytes),
            g.uploaded,
            g.evicted,
            g.refused
        )),
        None => ui.label("GPU memory: not used (panels are composed on the CPU)"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui_kittest::kittest::Queryable;

    #[test]
    fn the_statistics_list_each_layers_chunks_and_both_memories() {
        let rows = vec![ChunkStatistics {
            layer: "raw".into(),
            queued: 4,
            loading: 2,
            in_memory: 12,
            in_memory_bytes: 3 << 20,
            on_gpu: 10,
            on_gpu_bytes: 5 << 19,
            missing: 6,
            failed: 1,
        }];
        let cpu = CacheStats {
            chunks: 12,
            bytes: 3 << 20,
            budget_bytes: 2 << 30,
            queued: 4,
            in_flight: 2,
            completed: 15,
            reads: 9,
            view_moving: false,
        };
        let gpu = GpuStoreStats {
            chunks: 10,
            bytes: 5 << 19,
            budget_bytes: 1 << 30,
            uploaded: 11,
            evicted: 1,
            refused: 0,
        };
        let harness = egui_kittest::Harness::new_ui(|ui| ui_for_test(ui, &rows, &cpu, &gpu));
        for text in ["raw", "4", "2", "12 (3.0 MiB)", "10 (2.5 MiB)", "6", "1"] {
            harness.get_by_label(text);
        }
        harness.get_by_label("CPU cache: 12 chunks, 3.0 MiB of 2048.0 MiB; 15 read");
        harness.get_by_label(
            "GPU memory: 10 chunks, 2.5 MiB of 1024.0 MiB; 11 uploaded, 1 evicted, 0 refused",
        );
        // While the view moves, the line says that reading yields to drawing.
        let moving = CacheStats {
            view_moving: true,
            ..cpu
        };
        let harness = egui_kittest::Harness::new_ui(|ui| ui_for_test(ui, &rows, &moving, &gpu));
        harness.get_by_label(
            "CPU cache: 12 chunks, 3.0 MiB of 2048.0 MiB; 15 read, at low priority while the view moves",
        );
    }

    fn ui_for_test(
        ui: &mut egui::Ui,
        rows: &[ChunkStatistics],
        cpu: &CacheStats,
        gpu: &GpuStoreStats,
    ) {
        super::ui(ui, rows, cpu, Some(gpu));
    }
}
