//! The one place a command's report becomes output: JSON (the report serialised as it is)
//! or text for people, written by [`print`].

use super::*;
use crate::ops::apply::{ApplyReport, InputReport, PredictionReport};
use crate::ops::configs::{ConfigListing, DocumentReport};
use crate::ops::datasplit::DatasplitReport;
use crate::ops::demo::DemoReport;
use crate::ops::describe::ArrayDescription;
use crate::ops::evaluate::EvaluationReport;
use crate::ops::inspect::{ShapesOutcome, TargetsOutcome};
use crate::ops::post_process::PostProcessReport;
use crate::ops::train::TrainRunReport;
use crate::ops::validate::ValidationReport;
use crate::ops::weights::{ExportWeightsReport, ImportRunReport, ImportWeightsReport};

/// A report that can be shown to people as text (its JSON form is its serialisation).
pub(super) trait Report: serde::Serialize {
    /// The report as text lines, each ending in a newline.
    fn text(&self) -> String;
}

/// Writes `report` to `out` as pretty JSON or as text.
pub(super) fn print<R: Report>(out: &mut dyn Write, report: &R, json: bool) -> Result<u8, Failure> {
    if json {
        let value = serde_json::to_value(report)
            .map_err(|e| Failure::new(exit::IO, format!("cannot encode JSON: {e}")))?;
        emit_json(out, &value)?;
    } else {
        emit(out, &report.text())?;
    }
    Ok(exit::OK)
}

impl Report for ArrayDescription {
    fn text(&self) -> String {
        let axes = join_dims(
            self.axes.iter().map(|a| {
                if a.spatial {
                    a.name.clone()
                } else {
                    format!("{} (channel)", a.name)
                }
            }),
            ", ",
        );
        let mut text = format!(
            "{}\n  format        {}\n  data type     {}\n  shape         {}   (axes {axes})\n  chunks        {}\n",
            self.path,
            self.format,
            self.data_type_label,
            join_dims(&self.shape, " × "),
            join_dims(&self.chunk_shape, " × "),
        );
        if let Some(shard) = &self.shard_shape {
            text.push_str(&format!("  shards        {}\n", join_dims(shard, " × ")));
        }
        if self.channels > 1 {
            text.push_str(&format!("  channels      {}\n", self.channels));
        }
        text.push_str(&format!(
            "  voxel size    {} nm\n  offset        {} nm\n  region        {} nm\n  units         {}\n  codecs        {}\n  fill value    {}\n  geometry from {}\n",
            join_dims(&self.voxel_size_nm, " × "),
            join_dims(&self.offset_nm, ", "),
            self.roi,
            self.units.join(", "),
            self.codecs,
            self.fill_value,
            self.metadata,
        ));
        if self.offset_as_stored != self.offset_nm.iter().map(|&v| v as f64).collect::<Vec<_>>() {
            text.push_str(&format!(
                "  stored offset {}\n",
                join_dims(&self.offset_as_stored, ", ")
            ));
        }
        for note in &self.offset_notes {
            text.push_str(&format!("  note          {note}\n"));
        }
        if !self.scale_levels.is_empty() {
            text.push_str("  scale levels\n");
            for l in &self.scale_levels {
                let mark = if self.current_level.as_deref() == Some(l.path.as_str()) {
                    "*"
                } else {
                    " "
                };
                text.push_str(&format!(
                    "   {mark}{:<6} {:>16} nm   shape {}\n",
                    l.path,
                    join_dims(&l.voxel_size_nm, " × "),
                    join_dims(&l.shape, " × "),
                ));
            }
        }
        text
    }
}

impl Report for EvaluationReport {
    fn text(&self) -> String {
        if let Some(s) = &self.submitted {
            return format!(
                "submitted the scoring of {} against {} over {} to {}: array job {} ({} tasks, {} blocks, {} already scored), then job {}; follow it with `segno job status {}`; the report will be {}\n",
                self.test,
                self.truth,
                self.region,
                s.scheduler.label(),
                s.array_id,
                s.tasks,
                s.blocks,
                s.done,
                s.finish_id,
                s.output.display(),
                s.output.join(crate::blockwise::evaluate::REPORT).display()
            );
        }
        let mut text = format!(
            "scored {} against {} over {}{}\n",
            self.test,
            self.truth,
            self.region,
            if self.blocks > 1 {
                format!(" in {} blocks", self.blocks)
            } else {
                String::new()
            }
        );
        for (c, v) in &self.scores.0 {
            if v.is_finite() {
                text.push_str(&format!("  {c:<48} {v:.4}\n"));
            } else {
                text.push_str(&format!("  {c:<48} -\n"));
            }
        }
        // One line per group of criteria missing the same voxels (a channel's).
        let context = match self.context_nm.first() {
            Some(c) if self.context_nm.iter().all(|v| v == c) => c.to_string(),
            _ => self
                .context_nm
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
        };
        let mut groups: Vec<((u64, u64), Vec<&str>)> = Vec::new();
        for n in &self.not_computed {
            let key = (n.test_voxels, n.truth_voxels);
            match groups.last_mut() {
                Some((k, names)) if *k == key => names.push(&n.criterion),
                _ => groups.push((key, vec![&n.criterion])),
            }
        }
        for ((test, truth), names) in groups {
            text.push_str(&format!(
                "  not computed: {} — {test} test and {truth} truth voxels lie farther than the {context} nm context read around their block from the other's nearest foreground voxel (give a larger --context-nm)\n",
                names.join(", ")
            ));
        }
        if let Some(p) = &self.saved {
            text.push_str(&format!("report kept in {}\n", p.display()));
        }
        text
    }
}

impl Report for ValidationReport {
    fn text(&self) -> String {
        let mut text = format!(
            "run {} validated at iteration {}\n",
            self.run, self.iteration
        );
        // The headline criteria: F1, Dice, VOI and the unprefixed (instance) ones.
        let headline = |c: &str| {
            c.ends_with("__f1_score")
                || c.ends_with("__dice")
                || c.starts_with("voi")
                || !c.contains("__")
        };
        for d in &self.results {
            text.push_str(&format!("  {}\n", d.dataset));
            for p in &d.parameters {
                let cells: Vec<String> = p
                    .scores
                    .0
                    .iter()
                    .filter(|(c, _)| headline(c))
                    .map(|(c, v)| format!("{c} {v:.3}"))
                    .collect();
                text.push_str(&format!("    {:<16} {}\n", p.parameters, cells.join("  ")));
            }
        }
        for (dataset, error) in &self.errors {
            text.push_str(&format!("  failed {dataset}: {error}\n"));
        }
        text
    }
}

impl Report for PostProcessReport {
    fn text(&self) -> String {
        format!(
            "wrote {} ({} chunks, {:.1} s); foreground voxels per channel: {}\n",
            self.output.display(),
            self.chunks,
            self.duration_secs,
            join_dims(&self.foreground_voxels, ", ")
        )
    }
}

/// How a prediction's input was read, as text lines.
fn input_text(input: &InputReport) -> String {
    let mut text = format!(
        "  input        read as dataset {} ({}; ({}) nm{}{})\n",
        input.read_as,
        input.description,
        join_dims(&input.voxel_size_nm, ", "),
        input
            .scale_level
            .as_ref()
            .map(|l| format!("; scale level {l}"))
            .unwrap_or_default(),
        if input.from_record {
            ""
        } else {
            "; from the run's configs, it has no run record yet"
        }
    );
    for n in &input.notes {
        text.push_str(&format!("  note         {n}\n"));
    }
    text
}

/// A lower precision's difference from float32, as a text line (empty for float32).
fn precision_text(check: Option<&crate::blockwise::PrecisionCheck>) -> String {
    match check {
        None => String::new(),
        Some(c) => match c.max_abs_difference {
            Some(d) => format!(
                "  precision    {}: largest difference from float32 {d:.3e} ({} values on {} validation crop(s))\n",
                c.precision, c.values, c.crops
            ),
            None => format!(
                "  precision    {}: the run has no validation crops to measure its difference from float32 on\n",
                c.precision
            ),
        },
    }
}

/// A block job sent to a cluster, as text.
fn submitted_text(s: &crate::ops::job::SubmittedReport) -> String {
    format!(
        "submitted {} workers to {} as job array {} (then job {} finishes what they leave)\n  blocks       {} ({} already done)\n  logs         {}\n  follow with  segno job status {}\n",
        s.tasks,
        s.scheduler.label(),
        s.array_id,
        s.finish_id,
        s.blocks,
        s.done,
        s.log_dir.display(),
        s.output.display()
    )
}

impl Report for PredictionReport {
    fn text(&self) -> String {
        if let Some(s) = &self.submitted {
            return submitted_text(s) + &precision_text(self.precision.as_ref());
        }
        format!(
            "predicted {} with run {} (iteration {}) in {:.1} s\n  region       {}\n  blocks       {} ({} already done)\n{}{}",
            self.output.display(),
            self.run,
            self.iteration,
            self.duration_secs,
            self.roi,
            self.blocks,
            self.skipped,
            input_text(&self.input),
            precision_text(self.precision.as_ref())
        )
    }
}

impl Report for ApplyReport {
    fn text(&self) -> String {
        if let Some(s) = &self.submitted {
            return format!(
                "applying run {} (iteration {}, {}) on the cluster; the finishing job writes {}\n{}",
                self.run,
                self.iteration,
                self.parameters,
                self.output.display(),
                submitted_text(s)
            );
        }
        let basis = match &self.chosen_by {
            Some(b) => format!("best {} on {}: {:.3}", b.criterion, b.dataset, b.score),
            None => "as given".to_string(),
        };
        let mut text = format!(
            "applied run {} (iteration {}, {}; {basis})\n  region       {}\n  prediction   {} ({} blocks, {} already done, {:.1} s)\n  output       {} ({} chunks, {:.1} s)\n",
            self.run,
            self.iteration,
            self.parameters,
            self.roi,
            self.prediction.display(),
            self.blocks,
            self.skipped,
            self.predict_secs,
            self.output.display(),
            self.chunks,
            self.post_process_secs,
        );
        text.push_str(&input_text(&self.input));
        text.push_str(&precision_text(self.precision.as_ref()));
        for (label, n) in self.foreground_labels.iter().zip(&self.foreground_voxels) {
            text.push_str(&format!(
                "  {label:<12} {:.2}% of {} voxels\n",
                100.0 * *n as f64 / self.voxels.max(1) as f64,
                self.voxels
            ));
        }
        text
    }
}

impl Report for TrainRunReport {
    fn text(&self) -> String {
        let resumed = self
            .resumed_from
            .map(|r| format!(" (resumed from checkpoint {r})"))
            .unwrap_or_default();
        let stopped = if self.interrupted { ", stopped" } else { "" };
        format!(
            "run {}: trained to iteration {} of {}{resumed}{stopped} in {:.1} s on {}\n  seed           {}\n  last loss      {}\n  checkpoints    {}\n",
            self.run,
            self.trained_until,
            self.num_iterations,
            self.duration_secs,
            self.device,
            self.seed,
            self.last_loss
                .map(|l| format!("{l:.5}"))
                .unwrap_or_else(|| "-".into()),
            if self.checkpoints.is_empty() {
                "-".to_string()
            } else {
                join_dims(&self.checkpoints, ", ")
            },
        )
    }
}

impl Report for DemoReport {
    fn text(&self) -> String {
        let mut text = format!(
            "\ntrained {} iterations in {:.0} s; loss {:.4} (first 20) → {:.4} (last 20)\n\n",
            self.iterations, self.duration_secs, self.first_loss, self.last_loss
        );
        text.push_str(&format!(
            "{:>9}  {:<24} {:<24}\n",
            "iteration", "mito: best F1 (threshold)", "er: best F1 (threshold)"
        ));
        for r in &self.validations {
            let cell = |c: &str| {
                r.classes
                    .get(c)
                    .map(|v| format!("{:.3} ({})", v.f1_score, v.threshold))
                    .unwrap_or_else(|| "-".into())
            };
            text.push_str(&format!(
                "{:>9}  {:<24} {:<24}\n",
                r.iteration,
                cell("mito"),
                cell("er")
            ));
        }
        let a = &self.applied;
        let voxels = a.voxels.max(1) as f64;
        let fg: Vec<String> = a
            .foreground_labels
            .iter()
            .zip(&a.foreground_voxels)
            .map(|(c, n)| format!("{c} {:.1}%", 100.0 * *n as f64 / voxels))
            .collect();
        text.push_str(&format!(
            "\napplied iteration {} with {} to the whole volume ({:.0} s): {}\n",
            a.iteration,
            a.parameters,
            a.predict_secs + a.post_process_secs,
            fg.join(", ")
        ));
        text.push_str(&format!(
            "\nproject: {0}\n  checkpoints  {1}/\n  predictions  {2}/<iteration>/synthetic_crop2/\n  scores       {3}\n  prediction   {4}\n  segmentation {5}\n",
            self.project.display(),
            self.checkpoints.display(),
            self.validation_predictions.display(),
            self.scores.display(),
            a.prediction.display(),
            a.output.display()
        ));
        text
    }
}

impl Report for ImportWeightsReport {
    fn text(&self) -> String {
        let mut text = format!(
            "imported {} into run {} as iteration {}: {} tensors loaded\n  checkpoint  {}\n",
            self.weights.display(),
            self.run,
            self.iteration,
            self.loaded,
            self.checkpoint.display()
        );
        if !self.kept_initialised.is_empty() {
            text.push_str(&format!(
                "  kept as initialised ({}): {}\n",
                self.kept_initialised.len(),
                self.kept_initialised.join(", ")
            ));
        }
        if !self.unused.is_empty() {
            text.push_str(&format!(
                "  not used ({}): {}\n",
                self.unused.len(),
                self.unused.join(", ")
            ));
        }
        text
    }
}

impl Report for ExportWeightsReport {
    fn text(&self) -> String {
        format!(
            "exported run {} iteration {} to {} ({} tensors, with chain.* aliases)\n",
            self.run,
            self.iteration,
            self.output.display(),
            self.tensors
        )
    }
}

impl Report for ConfigListing {
    fn text(&self) -> String {
        let mut text = format!("project: {}\n", self.project.display());
        for (f, names) in &self.families {
            text.push_str(&format!("{} ({}):\n", f.dir_name(), names.len()));
            for n in names {
                text.push_str(&format!("  {n}\n"));
            }
        }
        text
    }
}

impl Report for DatasplitReport {
    fn text(&self) -> String {
        match self.stored {
            Some(s) => format!(
                "datasplit {} ({} training, {} validation datasets): {s}\n",
                self.name, self.train, self.validate
            ),
            None => self.yaml.clone(),
        }
    }
}

/// One checked or imported document with its failure turned into an exit code.
pub(super) struct Document {
    source: String,
    family: Option<Family>,
    name: Option<String>,
    pub(super) outcome: Result<String, Failure>,
    warnings: Vec<String>,
}

impl From<DocumentReport> for Document {
    fn from(r: DocumentReport) -> Self {
        Self {
            source: r.source,
            family: r.family,
            name: r.name,
            outcome: r.outcome.map_err(Failure::from),
            warnings: r.warnings,
        }
    }
}

impl Document {
    pub(super) fn to_json(&self) -> Value {
        let mut v = json!({
            "source": self.source,
            "family": self.family.map(|f| f.dir_name()),
            "name": self.name.as_deref().map(crate::store::configs::short_name),
        });
        match &self.outcome {
            Ok(what) => {
                v["ok"] = json!(true);
                v["outcome"] = json!(what);
            }
            Err(f) => {
                v["ok"] = json!(false);
                v["error"] = json!(f.message);
                v["exit_code"] = json!(f.code);
            }
        }
        v["warnings"] = json!(self.warnings);
        v
    }

    pub(super) fn to_text(&self) -> String {
        let what = match (&self.family, &self.name) {
            (Some(f), Some(n)) => {
                format!(" ({} {:?})", f.noun(), crate::store::configs::short_name(n))
            }
            _ => String::new(),
        };
        let mut text = match &self.outcome {
            Ok(o) => format!("{}{what}: {o}\n", self.source),
            Err(f) => format!("{}{what}: error: {}\n", self.source, f.message),
        };
        for w in &self.warnings {
            text.push_str(&format!("  warning: {w}\n"));
        }
        text
    }
}

impl Report for ShapesOutcome {
    fn text(&self) -> String {
        let mut text = format!("{}: {}\n", self.architecture, self.report.text());
        if let Some(n) = &self.note {
            text.push_str(&format!("note: {n}\n"));
        }
        text
    }
}

impl Report for TargetsOutcome {
    fn text(&self) -> String {
        let r = &self.report;
        let mut text = format!(
            "wrote the targets and weights of task {} for {}\n  target  {}\n  weight  {}\n",
            self.task,
            self.ground_truth,
            r.target.display(),
            r.weight.display()
        );
        for (c, (t, w)) in r.target_range.iter().zip(&r.weight_range).enumerate() {
            text.push_str(&format!(
                "  channel {c}: target {:.3} … {:.3}, weight {:.3} … {:.3}\n",
                t.0, t.1, w.0, w.1
            ));
        }
        text
    }
}

impl Report for ImportRunReport {
    fn text(&self) -> String {
        let mut text = format!("imported DaCapo run {}\n", self.run);
        for c in &self.imported {
            text.push_str(&format!(
                "  iteration {:<8} {} -> {}{}\n",
                c.iteration,
                c.from.display(),
                c.to.display(),
                if c.optimizer {
                    " (with optimizer state)"
                } else {
                    ""
                }
            ));
        }
        if !self.kept.is_empty() {
            text.push_str(&format!(
                "  already imported (kept): iterations {}\n",
                join_dims(&self.kept, ", ")
            ));
        }
        text.push_str(&format!(
            "  training statistics: {} iterations\n",
            self.training_stats
        ));
        for note in &self.notes {
            text.push_str(&format!("  note: {note}\n"));
        }
        text
    }
}

impl Report for crate::blockwise::WorkReport {
    fn text(&self) -> String {
        let mut text = format!(
            "worker finished {} block(s) ({} failed attempt(s)); the job has {} of {} done ({} before this worker)\n",
            self.finished, self.failed_attempts, self.done, self.total, self.done_before
        );
        if self.block_secs > 0.0 {
            text.push_str(&format!(
                "  ledger {:.3} s of {:.1} s of block time ({:.2}%)\n",
                self.ledger_secs,
                self.block_secs,
                100.0 * self.ledger_fraction()
            ));
        }
        for (k, roi, error) in &self.gave_up {
            text.push_str(&format!("  gave up block {k} {roi}: {error}\n"));
        }
        text
    }
}

impl Report for crate::ops::job::JobStatus {
    fn text(&self) -> String {
        let b = &self.blocks;
        let cluster = self
            .cluster
            .as_ref()
            .map(|c| {
                format!(
                    "  {}         workers {} {}, finishing job {} {}\n",
                    c.scheduler.label(),
                    c.array_id,
                    c.array_state,
                    c.finish_id,
                    c.finish_state
                )
            })
            .unwrap_or_default();
        let mut text = format!(
            "{}: {} of {} blocks done{}\n  running {}   stale {}   retrying {}   given up {}   pending {}\n  blocks        {} nm over {:?} + {:?} nm\n",
            self.output.display(),
            b.done,
            b.total,
            if self.complete { " (complete)" } else { "" },
            b.running,
            b.stale,
            b.retrying,
            b.gave_up.len(),
            b.pending,
            self.block_nm.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" × "),
            self.roi_nm.offset,
            self.roi_nm.shape,
        );
        text.push_str(&cluster);
        if !self.stages.is_empty() {
            let stages: Vec<String> = self
                .stages
                .iter()
                .map(|s| format!("{} {}/{}", s.name, s.done, s.total))
                .collect();
            text.push_str(&format!("  stages        {}\n", stages.join(", ")));
        }
        if b.done > 0 {
            text.push_str(&format!("  seconds/block {:.2}\n", b.mean_block_secs));
        }
        if let (Some(rate), Some(eta)) = (self.blocks_per_sec, self.eta_secs) {
            if !self.complete {
                text.push_str(&format!(
                    "  throughput    {rate:.2} blocks/s, about {eta:.0} s left\n"
                ));
            }
        }
        let alive: Vec<&str> = b
            .workers
            .iter()
            .filter(|(_, a)| *a)
            .map(|(n, _)| n.as_str())
            .collect();
        text.push_str(&format!(
            "  workers       {} known, {} alive{}\n",
            b.workers.len(),
            alive.len(),
            if alive.is_empty() {
                String::new()
            } else {
                format!(" ({})", alive.join(", "))
            }
        ));
        for (k, roi, attempts, error) in &self.gave_up {
            text.push_str(&format!(
                "  gave up block {k} at {:?} + {:?} nm after {attempts} attempts: {error}\n",
                roi.offset, roi.shape
            ));
        }
        text
    }
}

impl Report for crate::ops::job_bench::BlockwiseBenchReport {
    fn text(&self) -> String {
        let mut text = format!(
            "block job of {} blocks ({} output voxels each), {} CPU threads here\n  1 worker   {:.2} s  ({:.2} blocks/s)\n  2 workers  {:.2} s  ({:.2} blocks/s)\n  scaling efficiency {:.2} (1 = perfect)\n  ledger     {:.4} s of {:.2} s of block time: {:.2}% (goal ≤ 2%)\n",
            self.blocks,
            self.block_voxels,
            self.cpus,
            self.one_worker.secs,
            self.one_worker.blocks_per_sec,
            self.two_workers.secs,
            self.two_workers.blocks_per_sec,
            self.scaling_efficiency,
            self.ledger_secs,
            self.block_secs,
            100.0 * self.ledger_fraction,
        );
        match &self.slurm {
            Some(s) => text.push_str(&format!(
                "  Slurm      1 task {:.2} s, 4 tasks {:.2} s: speed-up {:.2}\n",
                s.one_task.secs, s.four_tasks.secs, s.speedup
            )),
            None => text.push_str("  Slurm      not measured (--slurm, and sbatch on PATH)\n"),
        }
        text
    }
}

impl Report for crate::ops::job::Resumed {
    fn text(&self) -> String {
        match self {
            crate::ops::job::Resumed::Submitted(s) => submitted_text(s),
            crate::ops::job::Resumed::Worked(w) => w.text(),
        }
    }
}
