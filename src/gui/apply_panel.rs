//! The Apply section: a trained run applied to a volume as a block job. Pick the run, the
//! checkpoint (the best by the task's criterion by default, with its score), the
//! post-processing parameters, the input (typed, browsed, or a layer of the viewer), the
//! region, the output and where the workers run (this machine with N workers, Slurm,
//! LSF); then follow its blocks (done, running, failed, throughput, time left), cancel or
//! resume it, and see the result in the viewer beside the raw data when it is done.
//!
//! The job runs as `segno apply` in a process of its own, so closing the app stops
//! nothing and a crash of either loses nothing; progress is read from the job's ledger.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use eframe::egui;

use super::project::ProjectSummary;
use crate::cluster::Scheduler;
use crate::ops::apply::ApplyChoices;
use crate::ops::job::JobStatus;

/// What the user asked of the Apply section in one frame.
#[derive(Debug, Clone, PartialEq)]
pub enum ApplyAction {
    /// Show a finished job's arrays in the viewer.
    Open {
        /// The input volume.
        raw: PathBuf,
        /// The prediction.
        prediction: PathBuf,
        /// The segmentation.
        segmentation: PathBuf,
    },
    /// Draw the region in the viewer over the input (the viewer hands it back).
    DrawRegion {
        /// The input volume (shown in the viewer when it is not yet).
        input: PathBuf,
    },
    /// A job started: show its input in the viewer, where its blocks fill as they finish.
    Watch {
        /// The input volume.
        input: PathBuf,
    },
}

/// Where the job's workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    /// Worker processes on this machine.
    Here,
    /// A job array on a cluster.
    Cluster(Scheduler),
}

/// A job started from the section.
struct RunningJob {
    child: Option<Child>,
    args: Vec<String>,
    input: PathBuf,
    prediction: PathBuf,
    segmentation: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
    started: Instant,
    polled: Option<Instant>,
    /// A status being read off the UI thread, and whether that reading started after
    /// the job ended.
    reading: Option<(std::sync::mpsc::Receiver<Option<JobStatus>>, bool)>,
    /// A reading that started after the job ended has arrived: the status is final.
    final_read: bool,
    status: Option<JobStatus>,
    /// The job's blocks for the viewer, made when a status arrives.
    block_map: Option<crate::gui::viewer::BlockMap>,
    /// `Ok(report)` once the command ended well, `Err(message)` if it failed.
    ended: Option<Result<serde_json::Value, String>>,
    /// The cluster jobs were submitted; the job ends when its finishing job has.
    submitted: bool,
    finished: bool,
    opened: bool,
    cancelled: bool,
}

/// The Apply section's own state.
pub struct ApplyPanel {
    /// The `segno` executable jobs run with (this program by default).
    pub segno_exe: PathBuf,
    /// The run to apply.
    pub run: Option<String>,
    /// The checkpoint (none: the best by the task's criterion).
    pub iteration: Option<u64>,
    /// The post-processing parameters (none: those that scored best with the checkpoint).
    pub parameters: Option<String>,
    /// The input volume.
    pub input: String,
    /// The region, `[z0:z1, y0:y1, x0:x1]` in nm (empty: all of the input).
    pub roi: String,
    /// The output zarr container.
    pub output: String,
    /// Replace existing outputs.
    pub overwrite: bool,
    /// Chunk compression of the outputs (a name of `Compression::NAMES`).
    pub compression: String,
    /// The floating-point type the network computes in (a name of `Precision::NAMES`).
    pub precision: String,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Where the workers run.
    pub place: Where,
    /// Worker processes here.
    pub workers: u32,
    /// Cluster: partition or queue.
    pub partition: String,
    /// Cluster: array tasks.
    pub tasks: u32,
    /// Cluster: GPUs per task.
    pub gpus: u32,
    /// Cluster: CPUs per task.
    pub cpus: u32,
    /// Cluster: time limit per task in minutes (0: the queue's).
    pub time_mins: u32,
    /// Cluster: account.
    pub account: String,
    /// The last problem to show.
    pub message: Option<String>,
    choices: Option<(String, Result<ApplyChoices, String>)>,
    job: Option<RunningJob>,
    /// What a button of this frame asked of the app.
    pending: Option<ApplyAction>,
}

impl Default for ApplyPanel {
    fn default() -> Self {
        Self {
            segno_exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("segno")),
            run: None,
            iteration: None,
            parameters: None,
            input: String::new(),
            roi: String::new(),
            output: String::new(),
            overwrite: false,
            compression: "blosc-lz4".into(),
            precision: "float32".into(),
            device: "auto".into(),
            place: Where::Here,
            workers: 1,
            partition: String::new(),
            tasks: 4,
            gpus: 0,
            cpus: 2,
            time_mins: 0,
            account: String::new(),
            message: None,
            choices: None,
            job: None,
            pending: None,
        }
    }
}

impl ApplyPanel {
    /// Whether a job started here is still running.
    pub fn running(&self) -> bool {
        // A job that ended well runs until its final state is read and it is opened.
        self.job.as_ref().is_some_and(|j| {
            !j.finished || (matches!(j.ended, Some(Ok(_))) && !j.opened && !j.cancelled)
        })
    }

    /// The progress of the job started here: `(done, total)` blocks.
    pub fn progress(&self) -> Option<(u64, u64)> {
        let s = self.job.as_ref()?.status.as_ref()?;
        Some((s.blocks.done, s.blocks.total))
    }

    /// Whether the job started here has finished and its output was written.
    pub fn finished_ok(&self) -> bool {
        self.job
            .as_ref()
            .is_some_and(|j| j.finished && matches!(j.ended, Some(Ok(_))) && !j.cancelled)
    }

    /// The checkpoint and parameters a job would use: those chosen, else the defaults.
    fn settings(&self) -> Option<(u64, String)> {
        let (_, Ok(c)) = self.choices.as_ref()? else {
            return None;
        };
        let default = c.default.as_ref();
        let iteration = self.iteration.or(default.map(|d| d.0))?;
        let parameters = self
            .parameters
            .clone()
            .or_else(|| default.map(|d| d.1.clone()))?;
        Some((iteration, parameters))
    }

    /// Draws the section for `project`; `arrays` are the project's arrays offered as
    /// inputs (the viewer's layers first). Returns what the app must do.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        project: Option<&ProjectSummary>,
        arrays: &[PathBuf],
    ) -> Option<ApplyAction> {
        ui.heading("Apply");
        let Some(p) = project else {
            ui.label("Open a project first.");
            return None;
        };
        // A folder dropped on the section is the input.
        if let Some(dropped) = crate::gui::dropped_paths(ui.ctx()).into_iter().next() {
            self.input = dropped.display().to_string();
        }
        let action = self.poll(p);
        if self.running() {
            ui.ctx().request_repaint_after(Duration::from_millis(250));
        }
        egui::ScrollArea::vertical()
            .id_salt("apply-scroll")
            .show(ui, |ui| {
                self.form(ui, p, arrays);
                ui.separator();
                self.progress_ui(ui);
            });
        action.or_else(|| self.pending.take())
    }

    /// The blocks of the job started here and their states, for the viewer.
    pub fn block_map(&self) -> Option<&crate::gui::viewer::BlockMap> {
        self.job.as_ref()?.block_map.as_ref()
    }

    fn load_choices(&mut self, p: &ProjectSummary, run: &str) {
        if self.choices.as_ref().is_some_and(|(r, _)| r == run) {
            return;
        }
        let choices = crate::ops::apply::apply_choices(p.store(), run).map_err(|e| e.to_string());
        self.iteration = None;
        self.parameters = None;
        self.choices = Some((run.to_string(), choices));
    }

    fn form(&mut self, ui: &mut egui::Ui, p: &ProjectSummary, arrays: &[PathBuf]) {
        let runs: Vec<String> = p.runs.iter().map(|r| r.name.clone()).collect();
        if runs.is_empty() {
            ui.label("No runs in this project: train one first (Runs).");
            return;
        }
        if self.run.as_ref().is_none_or(|r| !runs.contains(r)) {
            self.run = runs.first().cloned();
        }
        if self.output.is_empty() {
            self.output = p.root.join("outputs/applied.zarr").display().to_string();
        }
        egui::Grid::new("apply-form")
            .num_columns(2)
            .spacing([12.0, 6.0])
            .show(ui, |ui| {
                let l = ui.label("run");
                let mut run = self.run.clone().unwrap_or_default();
                egui::ComboBox::from_id_salt("apply-run")
                    .selected_text(&run)
                    .width(260.0)
                    .show_ui(ui, |ui| {
                        for r in &runs {
                            ui.selectable_value(&mut run, r.clone(), r);
                        }
                    })
                    .response
                    .labelled_by(l.id);
                self.run = Some(run.clone());
                ui.end_row();
                self.load_choices(p, &run);
                self.checkpoint_rows(ui);
                let l = ui.label("input");
                ui.horizontal(|ui| {
                    ui.add(
                        egui::TextEdit::singleline(&mut self.input)
                            .desired_width(380.0)
                            .hint_text("container.zarr/dataset, or drop its folder here"),
                    )
                    .labelled_by(l.id);
                    if ui.button("Browse…").clicked() {
                        if let Some(dir) =
                            rfd::FileDialog::new().set_directory(&p.root).pick_folder()
                        {
                            self.input = dir.display().to_string();
                        }
                    }
                    ui.menu_button("Project arrays", |ui| {
                        for a in arrays {
                            let shown = a.strip_prefix(&p.root).unwrap_or(a);
                            if ui
                                .button(shown.display().to_string())
                                .on_hover_text(a.display().to_string())
                                .clicked()
                            {
                                self.input = a.display().to_string();
                                ui.close();
                            }
                        }
                    })
                    .response
                    .on_hover_text("the viewer's layers first, then the project's arrays");
                });
                ui.end_row();
                let l = ui.label("region");
                ui.horizontal(|ui| {
                    ui.add(
                        egui::TextEdit::singleline(&mut self.roi)
                            .desired_width(380.0)
                            .hint_text("all of the input, or [z0:z1, y0:y1, x0:x1] in nm"),
                    )
                    .labelled_by(l.id);
                    if ui
                        .add_enabled(
                            !self.input.trim().is_empty(),
                            egui::Button::new("Draw in viewer"),
                        )
                        .on_hover_text("draw the region as a box over the input in the Viewer")
                        .clicked()
                    {
                        self.pending = Some(ApplyAction::DrawRegion {
                            input: PathBuf::from(self.input.trim()),
                        });
                    }
                });
                ui.end_row();
                let l = ui.label("output");
                ui.horizontal(|ui| {
                    ui.add(egui::TextEdit::singleline(&mut self.output).desired_width(380.0))
                        .labelled_by(l.id);
                    ui.checkbox(&mut self.overwrite, "replace existing");
                });
                ui.end_row();
                let l = ui.label("compression");
                ui.horizontal(|ui| {
                    egui::ComboBox::from_id_salt("apply-compression")
                        .selected_text(self.compression.as_str())
                        .show_ui(ui, |ui| {
                            for name in crate::array::write::Compression::NAMES {
                                ui.selectable_value(&mut self.compression, name.to_string(), name);
                            }
                        })
                        .response
                        .labelled_by(l.id);
                    let l = ui.label("precision");
                    egui::ComboBox::from_id_salt("apply-precision")
                        .selected_text(self.precision.as_str())
                        .show_ui(ui, |ui| {
                            for name in crate::blockwise::Precision::NAMES {
                                ui.selectable_value(&mut self.precision, name.to_string(), name);
                            }
                        })
                        .response
                        .labelled_by(l.id)
                        .on_hover_text(
                            "bfloat16 and float16 report their largest difference from float32 on the run's validation crops",
                        );
                });
                ui.end_row();
                ui.label("run on");
                ui.horizontal(|ui| {
                    ui.selectable_value(&mut self.place, Where::Here, "this machine");
                    for s in [Scheduler::Slurm, Scheduler::Lsf] {
                        let found = crate::cluster::available(s);
                        let text = if found {
                            s.label().to_string()
                        } else {
                            format!("{} (not found)", s.label())
                        };
                        ui.add_enabled_ui(found, |ui| {
                            ui.selectable_value(&mut self.place, Where::Cluster(s), text)
                        });
                    }
                });
                ui.end_row();
                match self.place {
                    Where::Here => {
                        let l = ui.label("workers");
                        ui.horizontal(|ui| {
                            ui.add(egui::DragValue::new(&mut self.workers).range(1..=64))
                                .labelled_by(l.id);
                            let l = ui.label("device");
                            ui.add(
                                egui::TextEdit::singleline(&mut self.device).desired_width(70.0),
                            )
                            .labelled_by(l.id);
                        });
                        ui.end_row();
                    }
                    Where::Cluster(s) => {
                        let l = ui.label(match s {
                            Scheduler::Slurm => "partition",
                            Scheduler::Lsf => "queue",
                        });
                        ui.horizontal(|ui| {
                            ui.add(
                                egui::TextEdit::singleline(&mut self.partition)
                                    .desired_width(110.0)
                                    .hint_text("default"),
                            )
                            .labelled_by(l.id);
                            for (name, value, max) in [
                                ("tasks", &mut self.tasks, 10_000),
                                ("GPUs", &mut self.gpus, 16),
                                ("CPUs", &mut self.cpus, 256),
                                ("minutes", &mut self.time_mins, 100_000),
                            ] {
                                let l = ui.label(name);
                                ui.add(egui::DragValue::new(value).range(0..=max))
                                    .labelled_by(l.id);
                            }
                            let l = ui.label("account");
                            ui.add(
                                egui::TextEdit::singleline(&mut self.account)
                                    .desired_width(90.0)
                                    .hint_text("none"),
                            )
                            .labelled_by(l.id);
                        });
                        ui.end_row();
                    }
                }
            });
        let problem = self.start_problem();
        ui.horizontal(|ui| {
            let can = problem.is_none() && !self.running();
            let start = ui
                .add_enabled(can, egui::Button::new("Start"))
                .on_hover_text("predict and post-process the region as a block job");
            if let Some(why) = &problem {
                ui.label(egui::RichText::new(why).weak());
            }
            if start.clicked() {
                self.start(p);
            }
        });
        if let Some(m) = &self.message {
            ui.colored_label(ui.visuals().error_fg_color, m);
        }
    }

    fn checkpoint_rows(&mut self, ui: &mut egui::Ui) {
        let Some((_, choices)) = &self.choices else {
            return;
        };
        let c = match choices {
            Ok(c) => c,
            Err(e) => {
                ui.label("checkpoint");
                ui.colored_label(ui.visuals().error_fg_color, e);
                ui.end_row();
                return;
            }
        };
        let best_text = match (&c.default, &c.no_default) {
            (Some((it, params, Some(by))), _) => format!(
                "best by {} on {}: iteration {it}, {params} ({:.3})",
                by.criterion, by.dataset, by.score
            ),
            (Some((it, params, None)), _) => format!("iteration {it}, {params}"),
            (None, Some(why)) => format!("no best yet: {why}"),
            (None, None) => "no best yet".into(),
        };
        let l = ui.label("checkpoint");
        let shown = match self.iteration {
            Some(i) => format!("iteration {i}"),
            None => "best".to_string(),
        };
        ui.horizontal(|ui| {
            egui::ComboBox::from_id_salt("apply-checkpoint")
                .selected_text(shown)
                .width(160.0)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.iteration, None, "best");
                    for i in c.iterations.iter().rev() {
                        ui.selectable_value(
                            &mut self.iteration,
                            Some(*i),
                            format!("iteration {i}"),
                        );
                    }
                })
                .response
                .labelled_by(l.id);
            ui.label(egui::RichText::new(best_text).weak());
        });
        ui.end_row();
        let l = ui.label("parameters");
        let shown = self.parameters.clone().unwrap_or_else(|| "best".into());
        egui::ComboBox::from_id_salt("apply-parameters")
            .selected_text(shown)
            .width(160.0)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut self.parameters, None, "best");
                for name in &c.parameters {
                    ui.selectable_value(&mut self.parameters, Some(name.clone()), name);
                }
            })
            .response
            .labelled_by(l.id);
        ui.end_row();
        if let Some(vs) = &c.voxel_size_nm {
            ui.label("");
            ui.label(
                egui::RichText::new(format!(
                    "the run was trained at {} nm",
                    vs.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(" × ")
                ))
                .weak(),
            );
            ui.end_row();
        }
    }

    /// Why the job cannot start as filled in, if it cannot.
    fn start_problem(&self) -> Option<String> {
        if self.input.trim().is_empty() {
            return Some("choose an input volume".into());
        }
        if self.output.trim().is_empty() {
            return Some("choose an output container".into());
        }
        if !self.roi.trim().is_empty() {
            if let Err(e) = crate::geometry::Roi::parse_slices(self.roi.trim()) {
                return Some(format!("region: {e}"));
            }
        }
        if let Some((_, Err(e))) = &self.choices {
            return Some(e.clone());
        }
        if self.settings().is_none() {
            return Some(
                "the run has no best checkpoint yet: choose an iteration and parameters".into(),
            );
        }
        None
    }

    /// The `segno apply` command line of the form's job.
    pub fn command(&self, project: &Path) -> Option<Vec<String>> {
        let (iteration, parameters) = self.settings()?;
        let mut a: Vec<String> = vec![
            "apply".into(),
            "-r".into(),
            self.run.clone()?,
            "--iteration".into(),
            iteration.to_string(),
            "--parameters".into(),
            parameters,
            "--input".into(),
            self.input.trim().into(),
            "--output".into(),
            self.output.trim().into(),
            "--device".into(),
            self.device.trim().into(),
            "-p".into(),
            project.display().to_string(),
            "--json".into(),
        ];
        if !self.roi.trim().is_empty() {
            a.extend(["--roi".into(), self.roi.trim().into()]);
        }
        if self.overwrite {
            a.push("--overwrite".into());
        }
        a.extend([
            "--compression".into(),
            self.compression.clone(),
            "--precision".into(),
            self.precision.clone(),
        ]);
        match self.place {
            Where::Here => a.extend(["--workers".into(), self.workers.max(1).to_string()]),
            Where::Cluster(s) => {
                a.push(match s {
                    Scheduler::Slurm => "--slurm".into(),
                    Scheduler::Lsf => "--lsf".into(),
                });
                a.extend(["--array".into(), self.tasks.max(1).to_string()]);
                a.extend(["--gpus".into(), self.gpus.to_string()]);
                a.extend(["--cpus".into(), self.cpus.max(1).to_string()]);
                if !self.partition.trim().is_empty() {
                    a.extend(["--partition".into(), self.partition.trim().into()]);
                }
                if self.time_mins > 0 {
                    a.extend(["--time".into(), self.time_mins.to_string()]);
                }
                if !self.account.trim().is_empty() {
                    a.extend(["--account".into(), self.account.trim().into()]);
                }
            }
        }
        Some(a)
    }

    fn start(&mut self, p: &ProjectSummary) {
        self.message = None;
        let (Some(args), Some((iteration, parameters)), Some(run)) =
            (self.command(&p.root), self.settings(), self.run.clone())
        else {
            return;
        };
        let output = PathBuf::from(self.output.trim());
        let job = RunningJob {
            child: None,
            args,
            input: PathBuf::from(self.input.trim()),
            prediction: output.join(format!("prediction_{run}_{iteration}")),
            segmentation: output.join(format!("output_{run}_{iteration}_{parameters}")),
            stdout: std::env::temp_dir().join(format!(
                "segno-apply-{}-{}.json",
                std::process::id(),
                unique()
            )),
            stderr: std::env::temp_dir().join(format!(
                "segno-apply-{}-{}.log",
                std::process::id(),
                unique()
            )),
            started: Instant::now(),
            polled: None,
            reading: None,
            final_read: false,
            status: None,
            block_map: None,
            ended: None,
            submitted: false,
            finished: false,
            opened: false,
            cancelled: false,
        };
        self.pending = Some(ApplyAction::Watch {
            input: job.input.clone(),
        });
        self.job = Some(job);
        self.spawn();
    }

    fn spawn(&mut self) {
        let exe = self.segno_exe.clone();
        let Some(job) = &mut self.job else {
            return;
        };
        let files = std::fs::File::create(&job.stdout)
            .and_then(|o| std::fs::File::create(&job.stderr).map(|e| (o, e)));
        let (out, err) = match files {
            Ok(f) => f,
            Err(e) => {
                self.message = Some(format!("cannot write {}: {e}", job.stdout.display()));
                return;
            }
        };
        let mut cmd = Command::new(&exe);
        cmd.args(&job.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        {
            use std::os::unix::process::CommandExt;
            // Its own process group: Cancel stops the job and the workers it started.
            cmd.process_group(0);
        }
        match cmd.spawn() {
            Ok(child) => {
                job.child = Some(child);
                job.started = Instant::now();
                job.ended = None;
                job.finished = false;
                job.opened = false;
                job.cancelled = false;
                job.submitted = false;
                job.final_read = false;
            }
            Err(e) => self.message = Some(format!("cannot start {}: {e}", exe.display())),
        }
    }

    /// Follows the running job: its process, its ledger, its cluster jobs.
    fn poll(&mut self, _p: &ProjectSummary) -> Option<ApplyAction> {
        let job = self.job.as_mut()?;
        if job
            .polled
            .is_some_and(|t| t.elapsed() < Duration::from_millis(200))
        {
            return None;
        }
        // The ledger is read off the UI thread (it lists every block); the newest reading
        // is shown.
        if let Some((reading, after_end)) = &job.reading {
            match reading.try_recv() {
                Ok(status) => {
                    if let Some(s) = status {
                        job.block_map = crate::gui::viewer::BlockMap::new(
                            &s.roi_nm.offset,
                            &s.roi_nm.shape,
                            &s.block_nm,
                            s.blocks.marks.clone(),
                        );
                        job.status = Some(s);
                    }
                    job.final_read |= *after_end;
                    job.reading = None;
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
                Err(std::sync::mpsc::TryRecvError::Disconnected) => job.reading = None,
            }
        }
        job.polled = Some(Instant::now());
        if let Some(child) = &mut job.child {
            if let Ok(Some(exit)) = child.try_wait() {
                job.child = None;
                let text = std::fs::read_to_string(&job.stdout).unwrap_or_default();
                let report: serde_json::Value =
                    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                if exit.success() {
                    job.submitted = !report["submitted"].is_null();
                    job.ended = Some(Ok(report));
                } else {
                    let log = std::fs::read_to_string(&job.stderr).unwrap_or_default();
                    let why = log
                        .lines()
                        .rev()
                        .find(|l| l.starts_with("error:"))
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("segno apply ended with {exit}"));
                    job.ended = Some(Err(why));
                    job.finished = true;
                }
            }
        }
        if let (Some(Ok(_)), false) = (&job.ended, job.finished) {
            job.finished = if job.submitted {
                // On a cluster the finishing job post-processes; it is done when its
                // jobs are no longer queued or running and the output exists.
                job.status.as_ref().is_some_and(|s| {
                    s.cluster.as_ref().is_some_and(|c| {
                        !matches!(c.finish_state.as_str(), "queued" | "running")
                            && !matches!(c.array_state.as_str(), "queued" | "running")
                    })
                }) && job.segmentation.exists()
            } else {
                true
            };
        }
        let exists = blockwise_job_exists(&job.prediction);
        // Once the job has ended, one more reading that starts after its end makes the
        // state shown final; then reading stops.
        if job.reading.is_none() && exists && !job.final_read {
            let (send, receive) = std::sync::mpsc::channel();
            let prediction = job.prediction.clone();
            std::thread::spawn(move || {
                let _ = send.send(crate::ops::job::status(&prediction).ok());
            });
            job.reading = Some((receive, job.finished));
        }
        let complete = job.final_read || !exists;
        if job.finished
            && complete
            && !job.opened
            && !job.cancelled
            && matches!(job.ended, Some(Ok(_)))
        {
            job.opened = true;
            return Some(ApplyAction::Open {
                raw: job.input.clone(),
                prediction: job.prediction.clone(),
                segmentation: job.segmentation.clone(),
            });
        }
        None
    }

    fn cancel(&mut self) {
        let Some(job) = &mut self.job else {
            return;
        };
        job.cancelled = true;
        if let Some(child) = &mut job.child {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: signals the process group this section started.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
            let _ = child.wait();
            job.child = None;
        }
        if job.submitted {
            if let Err(e) = crate::ops::job::cancel(&job.prediction) {
                self.message = Some(e.to_string());
            }
        }
        job.finished = true;
        job.ended = Some(Err(
            "cancelled; finished blocks stay recorded (Resume continues)".into(),
        ));
    }

    fn progress_ui(&mut self, ui: &mut egui::Ui) {
        let Some(job) = &self.job else {
            ui.label(egui::RichText::new("No job started from here yet.").weak());
            return;
        };
        ui.label(egui::RichText::new("Job").strong());
        ui.label(format!("prediction   {}", job.prediction.display()));
        ui.label(format!("segmentation {}", job.segmentation.display()));
        if let Some(s) = &job.status {
            let b = &s.blocks;
            let fraction = b.done as f32 / b.total.max(1) as f32;
            ui.add(
                egui::ProgressBar::new(fraction)
                    .text(format!("{} of {} blocks", b.done, b.total))
                    .desired_width(420.0),
            );
            ui.label(format!(
                "running {}   stale {}   retrying {}   failed {}   pending {}",
                b.running,
                b.stale,
                b.retrying,
                b.gave_up.len(),
                b.pending
            ));
            if let (Some(rate), false) = (s.blocks_per_sec, s.complete) {
                ui.label(format!(
                    "{rate:.2} blocks/s, about {:.0} s left",
                    s.eta_secs.unwrap_or(0.0)
                ));
            }
            if let Some(c) = &s.cluster {
                ui.label(format!(
                    "{} workers {} {}, finishing job {} {}",
                    c.scheduler.label(),
                    c.array_id,
                    c.array_state,
                    c.finish_id,
                    c.finish_state
                ));
            }
            for (k, roi, attempts, error) in s.gave_up.iter().take(5) {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!(
                        "block {k} at {:?} + {:?} nm failed {attempts} times: {error}",
                        roi.offset, roi.shape
                    ),
                );
            }
        } else if !job.finished {
            ui.label(format!(
                "starting… ({:.0} s)",
                job.started.elapsed().as_secs_f64()
            ));
        }
        let state = match (&job.ended, job.finished) {
            (Some(Err(e)), _) => Some((true, e.clone())),
            (Some(Ok(_)), true) => Some((false, "done: shown in the Viewer".to_string())),
            (Some(Ok(_)), false) if job.submitted => {
                Some((false, "submitted; waiting for the cluster".to_string()))
            }
            _ => None,
        };
        if let Some((bad, text)) = state {
            if bad {
                ui.colored_label(ui.visuals().error_fg_color, text);
            } else {
                ui.label(text);
            }
        }
        if let Some(Ok(report)) = &job.ended {
            let check = &report["precision"];
            if let (Some(p), Some(d)) = (
                check["precision"].as_str(),
                check["max_abs_difference"].as_f64(),
            ) {
                ui.label(format!(
                    "{p}: largest difference from float32 {d:.3e} on {} validation crop(s)",
                    check["crops"]
                ));
            }
        }
        let (running, finished_badly) = (
            !job.finished,
            job.finished && !matches!(job.ended, Some(Ok(_))),
        );
        ui.horizontal(|ui| {
            if ui
                .add_enabled(running, egui::Button::new("Cancel"))
                .clicked()
            {
                self.cancel();
            }
            if ui
                .add_enabled(finished_badly, egui::Button::new("Resume"))
                .on_hover_text("run the same job again: only the blocks not yet done are computed")
                .clicked()
            {
                self.spawn();
            }
        });
    }
}

fn blockwise_job_exists(output: &Path) -> bool {
    crate::blockwise::job::job_dir(output)
        .join("job.json")
        .is_file()
}

fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_carries_every_choice() {
        let mut panel = ApplyPanel {
            run: Some("r".into()),
            input: "/d/raw.zarr/raw".into(),
            output: "/d/out.zarr".into(),
            roi: "[0:80, 0:80, 0:80]".into(),
            ..ApplyPanel::default()
        };
        panel.choices = Some((
            "r".into(),
            Ok(ApplyChoices {
                run: "r".into(),
                iterations: vec![10, 20],
                parameters: vec!["threshold_0".into(), "threshold_0.5".into()],
                datasets: vec!["crop".into()],
                criterion: "f1_score".into(),
                default: Some((20, "threshold_0.5".into(), None)),
                no_default: None,
                voxel_size_nm: None,
            }),
        ));
        let a = panel.command(Path::new("/p")).unwrap();
        let joined = a.join(" ");
        assert!(joined.starts_with("apply -r r --iteration 20 --parameters threshold_0.5 --input /d/raw.zarr/raw --output /d/out.zarr"), "{joined}");
        assert!(joined.contains("--roi [0:80, 0:80, 0:80]"), "{joined}");
        assert!(
            joined.contains("--compression blosc-lz4 --precision float32"),
            "{joined}"
        );
        assert!(joined.ends_with("--workers 1"), "{joined}");
        panel.compression = "gzip".into();
        panel.precision = "bfloat16".into();
        let joined = panel.command(Path::new("/p")).unwrap().join(" ");
        assert!(
            joined.contains("--compression gzip --precision bfloat16"),
            "{joined}"
        );
        // What the form builds, segno's own parser accepts.
        use clap::Parser;
        let parsed = crate::cli::Cli::try_parse_from(
            std::iter::once("segno".to_string()).chain(panel.command(Path::new("/p")).unwrap()),
        );
        assert!(parsed.is_ok(), "{:?}", parsed.err());
        panel.iteration = Some(10);
        panel.parameters = Some("threshold_0".into());
        panel.place = Where::Cluster(Scheduler::Slurm);
        panel.partition = "debug".into();
        panel.time_mins = 30;
        let joined = panel.command(Path::new("/p")).unwrap().join(" ");
        assert!(
            joined.contains("--iteration 10 --parameters threshold_0 "),
            "{joined}"
        );
        assert!(
            joined.ends_with("--slurm --array 4 --gpus 0 --cpus 2 --partition debug --time 30"),
            "{joined}"
        );
        // A region that does not parse keeps Start off, with the reason.
        panel.roi = "[0:80".into();
        assert!(panel.start_problem().unwrap().starts_with("region:"));
    }
}
