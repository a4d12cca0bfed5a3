//! The Runs panel's launcher and monitor: runs start as `segno train` child processes that
//! outlive the app (their log in `<run>/train.log`), the app finds them again through the
//! run's lock file, stops them with SIGTERM, and plots their training loss (raw and
//! smoothed) from the statistics `segno train` writes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eframe::egui;

use crate::store::layout::RunDir;
use crate::store::lock::{run_state, RunState};

/// What the monitor knows of one run, refreshed about once a second.
#[derive(Debug, Clone)]
pub struct RunMonitor {
    /// Its state.
    pub state: RunState,
    /// Training loss per iteration.
    pub losses: Vec<[f64; 2]>,
    /// Seconds per iteration (forward, backward and step) by iteration.
    pub times: Vec<[f64; 2]>,
    /// The last lines of its training log.
    pub log_tail: Vec<String>,
    /// Its validation scores, once it has been validated.
    pub scores: Option<crate::task::evaluate::ValidationScores>,
    /// Files of the run that could not be read (statistics, scores), each naming the file.
    pub unreadable: Vec<String>,
    /// Whether validation arrays of the run are stored (so it can be viewed).
    pub validated: bool,
    /// The cluster job recorded for the run and its state from the scheduler.
    pub job: Option<(
        crate::cluster::SubmittedJob,
        Result<crate::cluster::JobState, String>,
    )>,
}

impl RunMonitor {
    /// The status shown in the runs table: the run's state, or the cluster job's while it
    /// is queued or running.
    pub fn status(&self) -> String {
        use crate::cluster::JobState;
        match &self.job {
            Some((job, Ok(JobState::Pending))) => {
                format!("queued ({} job {})", job.scheduler.label(), job.job_id)
            }
            Some((job, Ok(JobState::Running))) => {
                format!("training ({} job {})", job.scheduler.label(), job.job_id)
            }
            Some((job, Err(e))) if !matches!(self.state, RunState::Finished) => {
                format!("{} job {}: {e}", job.scheduler.label(), job.job_id)
            }
            _ => self.state.label().to_string(),
        }
    }

    /// Whether a cluster job of the run is queued or running.
    pub fn job_active(&self) -> bool {
        matches!(&self.job, Some((_, Ok(s))) if s.active())
    }
}

/// The answers of one poll of the schedulers: (run, job, state) per job asked about.
type JobPoll = std::sync::mpsc::Receiver<
    Vec<(
        String,
        crate::cluster::SubmittedJob,
        Result<crate::cluster::JobState, String>,
    )>,
>;

/// Where Start runs a trainer.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A `segno train` child process on this machine.
    Local,
    /// A job submitted to a batch scheduler.
    Cluster(crate::cluster::JobRequest),
}

/// A run's stored validation scores (names as the file lists them), once it has some; a
/// scores file that cannot be read is an error naming it.
fn read_validation(
    root: &Path,
    run: &str,
) -> Result<Option<crate::task::evaluate::ValidationScores>, String> {
    Ok(
        crate::store::scores::read_stored_scores(&RunDir::new(root, run))
            .map_err(|e| e.to_string())?
            .filter(|s| s.iterations().next().is_some()),
    )
}

/// The launcher's state.
pub struct Launcher {
    /// The `segno` executable runs are started with (this program by default).
    pub segno_exe: PathBuf,
    /// Device for new trainers: `auto`, `cpu` or `cuda`.
    pub device: String,
    /// New trainers keep the validation arrays of the best and latest iterations only.
    pub keep_best_validation: bool,
    /// Monitors by run name.
    pub runs: HashMap<String, RunMonitor>,
    /// The run whose plot and log are shown.
    pub selected: Option<String>,
    /// The last problem (a trainer that could not start or stop).
    pub message: Option<String>,
    /// The validation criterion plotted (a metric such as `f1_score`, or a full name).
    pub criterion: String,
    /// Where Start runs trainers.
    pub target: Target,
    /// Whether libtorch sees a GPU on this machine (asked once).
    gpu_here: Option<bool>,
    /// The scheduler's answers about queued and running jobs, while a poll is under way.
    job_poll: Option<JobPoll>,
    children: Vec<std::process::Child>,
    refreshed: Option<Instant>,
}

impl Default for Launcher {
    fn default() -> Self {
        Self {
            segno_exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("segno")),
            device: "auto".into(),
            keep_best_validation: false,
            runs: HashMap::new(),
            selected: None,
            message: None,
            criterion: "f1_score".into(),
            target: Target::Local,
            gpu_here: None,
            job_poll: None,
            children: Vec::new(),
            refreshed: None,
        }
    }
}

/// A moving average of `points` (exponential, weight `alpha` on the past).
pub fn smoothed(points: &[[f64; 2]], alpha: f64) -> Vec<[f64; 2]> {
    let mut out = Vec::with_capacity(points.len());
    let mut acc = None;
    for p in points {
        let v = match acc {
            None => p[1],
            Some(a) => alpha * a + (1.0 - alpha) * p[1],
        };
        acc = Some(v);
        out.push([p[0], v]);
    }
    out
}

fn tail(path: &Path, lines: usize) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    // Progress bars redraw with carriage returns: keep each line's last state.
    let all: Vec<String> = text
        .lines()
        .map(|l| l.rsplit('\r').next().unwrap_or(l).to_string())
        .filter(|l| !l.trim().is_empty())
        .collect();
    all[all.len().saturating_sub(lines)..].to_vec()
}

impl Launcher {
    /// Re-reads every run's state, losses and log (at most once a second unless `force`).
    pub fn refresh(&mut self, root: &Path, runs: &[(String, u64)], force: bool) {
        if !force
            && self
                .refreshed
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.refreshed = Some(Instant::now());
        // The monitor shows the first run until another is chosen.
        if self.selected.is_none() {
            self.selected = runs.first().map(|(n, _)| n.clone());
        }
        self.children
            .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
        for (name, iterations) in runs {
            let dir = root.join(name);
            let mut unreadable = Vec::new();
            let stats =
                crate::store::stats::read_training_stats(&RunDir::new(root, name).training_stats())
                    .unwrap_or_else(|e| {
                        unreadable.push(e.to_string());
                        Vec::new()
                    });
            let scores = read_validation(root, name).unwrap_or_else(|e| {
                unreadable.push(e);
                None
            });
            let job = self.job_state(&dir, name);
            self.runs.insert(
                name.clone(),
                RunMonitor {
                    job,
                    validated: !RunDir::from_dir(&dir).validated_iterations().is_empty(),
                    state: run_state(&dir, *iterations),
                    losses: stats.iter().map(|s| [s.iteration as f64, s.loss]).collect(),
                    times: stats.iter().map(|s| [s.iteration as f64, s.time]).collect(),
                    log_tail: tail(&RunDir::from_dir(&dir).train_log(), 12),
                    scores,
                    unreadable,
                },
            );
        }
        self.poll_jobs();
    }

    /// The run's recorded cluster job with the state last heard from the scheduler; a job
    /// not asked about yet counts as queued (it was just submitted, or found again after a
    /// restart), so it is never started a second time meanwhile.
    fn job_state(
        &self,
        run_dir: &Path,
        run: &str,
    ) -> Option<(
        crate::cluster::SubmittedJob,
        Result<crate::cluster::JobState, String>,
    )> {
        let job = match crate::cluster::recorded_job(run_dir) {
            Ok(j) => j?,
            Err(e) => {
                let job = crate::cluster::SubmittedJob {
                    scheduler: crate::cluster::Scheduler::Slurm,
                    job_id: "?".into(),
                    request: crate::cluster::JobRequest::default(),
                };
                return Some((job, Err(e.to_string())));
            }
        };
        match self.runs.get(run).and_then(|m| m.job.clone()) {
            Some((old, state)) if old == job => Some((job, state)),
            _ => Some((job, Ok(crate::cluster::JobState::Pending))),
        }
    }

    /// Takes in the scheduler's answers of the last poll, and asks again (on a thread:
    /// scheduler commands can take seconds) about every job still queued or running.
    fn poll_jobs(&mut self) {
        if let Some(rx) = &self.job_poll {
            match rx.try_recv() {
                Ok(answers) => {
                    for (run, job, state) in answers {
                        if let Some(m) = self.runs.get_mut(&run) {
                            if m.job.as_ref().is_some_and(|(j, _)| *j == job) {
                                m.job = Some((job, state));
                            }
                        }
                    }
                    self.job_poll = None;
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => return,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => self.job_poll = None,
            }
        }
        let asks: Vec<(String, crate::cluster::SubmittedJob)> = self
            .runs
            .iter()
            .filter(|(_, m)| m.job_active())
            .filter_map(|(name, m)| m.job.as_ref().map(|(j, _)| (name.clone(), j.clone())))
            .collect();
        if asks.is_empty() {
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let answers: Vec<_> = asks
                .into_iter()
                .map(|(run, job)| {
                    let state = crate::cluster::status(&job).map_err(|e| e.to_string());
                    (run, job, state)
                })
                .collect();
            let _ = tx.send(answers);
        });
        self.job_poll = Some(rx);
    }

    /// Starts `run` where [`Launcher::target`] says: a local child process or a job.
    pub fn launch(&mut self, root: &Path, run: &str) {
        match self.target.clone() {
            Target::Local => self.start(root, run),
            Target::Cluster(request) => {
                match crate::cluster::submit(
                    &request,
                    root,
                    run,
                    &self.segno_exe,
                    &self.train_args(),
                ) {
                    Ok(_) => self.message = None,
                    Err(e) => self.message = Some(format!("not submitted: {e}")),
                }
                self.refreshed = None;
            }
        }
    }

    /// Starts `segno train` of `run` as a detached child process on this machine, logging
    /// to `<run>/train.log`.
    pub fn start(&mut self, root: &Path, run: &str) {
        let dir = root.join(run);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            self.message = Some(format!("{}: {e}", dir.display()));
            return;
        }
        let log = match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(RunDir::from_dir(&dir).train_log())
        {
            Ok(f) => f,
            Err(e) => {
                self.message = Some(format!(
                    "{}: {e}",
                    RunDir::from_dir(&dir).train_log().display()
                ));
                return;
            }
        };
        let err = match log.try_clone() {
            Ok(f) => f,
            Err(e) => {
                self.message = Some(e.to_string());
                return;
            }
        };
        let mut cmd = std::process::Command::new(&self.segno_exe);
        cmd.args(["train", "-r", run])
            .args(self.train_args())
            .arg("-p")
            .arg(root)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(err);
        // Its own process group: closing the app (or its terminal) does not stop training.
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        match cmd.spawn() {
            Ok(child) => {
                self.children.push(child);
                self.message = None;
            }
            Err(e) => {
                self.message = Some(format!("cannot start {}: {e}", self.segno_exe.display()))
            }
        }
        self.refreshed = None;
    }

    /// Stops the trainer of `run` (SIGTERM); it resumes from its last checkpoint later.
    pub fn stop(&mut self, run: &str) {
        if let Some(m) = self.runs.get(run).filter(|m| m.job_active()) {
            if let Some((job, _)) = &m.job {
                if let Err(e) = crate::cluster::cancel(job) {
                    self.message = Some(format!("cannot cancel: {e}"));
                }
            }
            self.refreshed = None;
            return;
        }
        if let Some(RunMonitor {
            state: RunState::Training { pid, host },
            ..
        }) = self.runs.get(run)
        {
            if let Some(host) = host {
                self.message = Some(format!(
                    "process {pid} runs on {host}: stop it there (or cancel its cluster job)"
                ));
                return;
            }
            let Ok(p) = libc::pid_t::try_from(*pid) else {
                return;
            };
            // SAFETY: sends SIGTERM to the trainer process recorded in the run's lock file.
            let r = unsafe { libc::kill(p, libc::SIGTERM) };
            if r != 0 {
                self.message = Some(format!(
                    "cannot stop process {pid}: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
        self.refreshed = None;
    }

    /// The run's start/stop buttons (for a row of the Runs table).
    pub fn buttons(&mut self, ui: &mut egui::Ui, root: &Path, run: &str) {
        let state = self.runs.get(run).map(|m| m.state.clone());
        let queued = self.runs.get(run).is_some_and(RunMonitor::job_active);
        match state {
            _ if queued && !matches!(state, Some(RunState::Training { .. })) => {
                if ui.button("Cancel").clicked() {
                    self.stop(run);
                }
            }
            Some(RunState::Training { .. }) => {
                if ui.button("Stop").clicked() {
                    self.stop(run);
                }
            }
            Some(RunState::Finished) => {
                ui.weak("done");
            }
            Some(RunState::NotStarted) | None => {
                if ui.button("Start").clicked() {
                    self.launch(root, run);
                }
            }
            Some(RunState::Stopped) | Some(RunState::Failed { .. }) => {
                if ui.button("Resume").clicked() {
                    self.launch(root, run);
                }
            }
        }
        if ui
            .selectable_label(self.selected.as_deref() == Some(run), "Monitor")
            .clicked()
        {
            self.selected = Some(run.to_string());
        }
    }

    /// The `segno train` options of new trainers (device, validation arrays kept).
    fn train_args(&self) -> Vec<String> {
        let mut args = vec!["--device".to_string(), self.device.clone()];
        if self.keep_best_validation {
            args.extend(["--keep-validation".to_string(), "best".to_string()]);
        }
        args
    }

    /// The monitor of the selected run: device choice, state (with the error of a failed
    /// run), loss and iteration-time plots, validation scores and the best iteration per
    /// criterion, and the log. Returns the (run, iteration, parameters) whose validation
    /// the user asked to view.
    pub fn monitor_ui(&mut self, ui: &mut egui::Ui) -> Option<(String, u64, String)> {
        ui.horizontal(|ui| {
            let l = ui.label("device for new trainers");
            // A GPU missing here matters only for trainers started on this machine.
            let local = self.target == Target::Local;
            let gpu_here = *self.gpu_here.get_or_insert_with(crate::device::cuda_available);
            let shown = |d: &str| match d {
                "cuda" if local && !gpu_here => "cuda (no GPU here)".to_string(),
                "auto" if local && !gpu_here => "auto (CPU here)".to_string(),
                other => other.to_string(),
            };
            egui::ComboBox::from_id_salt("train-device")
                .selected_text(shown(&self.device))
                .show_ui(ui, |ui| {
                    for d in ["auto", "cpu", "cuda"] {
                        ui.selectable_value(&mut self.device, d.to_string(), shown(d));
                    }
                })
                .response
                .labelled_by(l.id);
            ui.checkbox(
                &mut self.keep_best_validation,
                "keep validation arrays of the best and latest iterations only",
            )
            .on_hover_text("Validation scores are kept for every iteration; predictions and outputs of other iterations are deleted after each validation.");
        });
        self.target_ui(ui);
        if let Some(m) = &self.message {
            ui.colored_label(ui.visuals().error_fg_color, m);
        }
        let name = self.selected.clone()?;
        let m = self.runs.get(&name)?;
        ui.separator();
        ui.label(egui::RichText::new(format!("{name}: {}", m.state.label())).strong());
        if let RunState::Failed { error } = &m.state {
            ui.colored_label(ui.visuals().error_fg_color, format!("error: {error}"));
        }
        ui.label(format!("{} iterations recorded", m.losses.len()));
        let raw = egui_plot::Line::new("loss", egui_plot::PlotPoints::from(m.losses.clone()));
        let smooth = egui_plot::Line::new(
            "loss (smoothed)",
            egui_plot::PlotPoints::from(smoothed(&m.losses, 0.9)),
        );
        let mut view = None;
        ui.columns(2, |cols| {
            egui_plot::Plot::new(("loss-plot", name.as_str()))
                .height(170.0)
                .legend(egui_plot::Legend::default())
                .x_axis_label("iteration")
                .y_axis_label("loss")
                .show(&mut cols[0], |plot| {
                    plot.line(raw);
                    plot.line(smooth);
                });
            egui_plot::Plot::new(("time-plot", name.as_str()))
                .height(170.0)
                .legend(egui_plot::Legend::default())
                .x_axis_label("iteration")
                .y_axis_label("seconds")
                .show(&mut cols[1], |plot| {
                    plot.line(egui_plot::Line::new(
                        "iteration time",
                        egui_plot::PlotPoints::from(m.times.clone()),
                    ));
                });
        });
        for problem in &m.unreadable {
            ui.colored_label(ui.visuals().error_fg_color, problem);
        }
        if let Some(scores) = &m.scores {
            // Validation failures never stop training; the last one is shown here.
            if let Some((it, failures)) = scores.last_failure() {
                for (dataset, error) in failures {
                    ui.colored_label(
                        ui.visuals().warn_fg_color,
                        format!("validation of {dataset} at iteration {it} failed (scores NaN): {error}"),
                    );
                }
            }
            validation_ui(ui, scores, &mut self.criterion, &name);
            view = best_table(ui, scores, &name);
        }
        egui::CollapsingHeader::new("training log")
            .default_open(true)
            .show(ui, |ui| {
                for line in &m.log_tail {
                    ui.monospace(line);
                }
            });
        view
    }

    /// Where Start runs trainers: this machine, or Slurm / LSF with the job's resources.
    fn target_ui(&mut self, ui: &mut egui::Ui) {
        use crate::cluster::{JobRequest, Scheduler};
        let label = match &self.target {
            Target::Local => "this machine".to_string(),
            Target::Cluster(r) => r.scheduler.label().to_string(),
        };
        ui.horizontal(|ui| {
            egui::ComboBox::from_label("run trainers on")
                .selected_text(label)
                .show_ui(ui, |ui| {
                    if ui
                        .selectable_label(self.target == Target::Local, "this machine")
                        .clicked()
                    {
                        self.target = Target::Local;
                    }
                    for s in [Scheduler::Slurm, Scheduler::Lsf] {
                        let on = matches!(&self.target, Target::Cluster(r) if r.scheduler == s);
                        let text = if crate::cluster::available(s) {
                            s.label().to_string()
                        } else {
                            format!("{} (not found)", s.label())
                        };
                        if ui.selectable_label(on, text).clicked() && !on {
                            // A new request starts from the options file's compute
                            // context (LSF: DaCapo's Bsub settings).
                            match JobRequest::default_for(s) {
                                Ok(r) => self.target = Target::Cluster(r),
                                Err(e) => self.message = Some(e.to_string()),
                            }
                        }
                    }
                });
        });
        if let Target::Cluster(r) = &mut self.target {
            ui.horizontal(|ui| {
                let name = match r.scheduler {
                    Scheduler::Slurm => "partition",
                    Scheduler::Lsf => "queue",
                };
                let l = ui.label(name);
                ui.add(
                    egui::TextEdit::singleline(&mut r.queue)
                        .desired_width(110.0)
                        .hint_text("default"),
                )
                .labelled_by(l.id);
                let l = ui.label("GPUs");
                ui.add(egui::DragValue::new(&mut r.gpus).range(0..=16))
                    .labelled_by(l.id);
                let l = ui.label("CPUs");
                ui.add(egui::DragValue::new(&mut r.cpus).range(1..=256))
                    .labelled_by(l.id);
                let l = ui.label("account");
                ui.add(
                    egui::TextEdit::singleline(&mut r.account)
                        .desired_width(110.0)
                        .hint_text("none"),
                )
                .labelled_by(l.id);
            });
        }
    }

    /// The best (iteration, parameters, value) of the first validation dataset for the
    /// plotted criterion.
    pub fn best(&self, run: &str) -> Option<(u64, String, f64)> {
        let scores = self.runs.get(run)?.scores.as_ref()?;
        let dataset = scores.datasets().first()?;
        let (it, p, v) = scores.best_for(dataset, &self.criterion)?;
        Some((it, scores.parameters().get(p)?.clone(), v))
    }

    /// Whether any run is being trained or has a queued or running job (the panel then
    /// refreshes every second).
    pub fn any_training(&self) -> bool {
        self.runs
            .values()
            .any(|m| matches!(m.state, RunState::Training { .. }) || m.job_active())
    }
}

/// Validation scores over iterations, one line per parameter set, for the first dataset,
/// and the best iteration for the criterion.
/// The metrics of a score store: each criterion's metric name (the part after `__` for
/// per-class criteria), once each, in order.
fn metric_names(scores: &crate::task::evaluate::ValidationScores) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    scores
        .criteria()
        .iter()
        .map(|c| c.rsplit("__").next().unwrap_or(c).to_string())
        .filter(|m| seen.insert(m.clone()))
        .collect()
}

/// The best iteration and parameters of every metric on the first validation dataset,
/// each with a button that opens it in the viewer; returns the one clicked.
fn best_table(
    ui: &mut egui::Ui,
    scores: &crate::task::evaluate::ValidationScores,
    run: &str,
) -> Option<(String, u64, String)> {
    let dataset = scores.datasets().first()?.clone();
    let mut view = None;
    egui::CollapsingHeader::new("best iteration per criterion")
        .default_open(true)
        .show(ui, |ui| {
            egui::Grid::new(("best", run)).striped(true).show(ui, |ui| {
                for h in ["criterion", "best", "iteration", "parameters", ""] {
                    ui.label(egui::RichText::new(h).strong());
                }
                ui.end_row();
                for metric in metric_names(scores) {
                    let Some((it, p, v)) = scores.best_for(&dataset, &metric) else {
                        continue;
                    };
                    let params = scores.parameters().get(p).cloned().unwrap_or_default();
                    ui.label(&metric);
                    ui.label(format!("{v:.4}"));
                    ui.label(it.to_string());
                    ui.label(&params);
                    if ui
                        .button(format!("View best {metric}"))
                        .on_hover_text(
                            "raw, ground truth, and this iteration's prediction and output",
                        )
                        .clicked()
                    {
                        view = Some((run.to_string(), it, params));
                    }
                    ui.end_row();
                }
            });
        });
    view
}

fn validation_ui(
    ui: &mut egui::Ui,
    scores: &crate::task::evaluate::ValidationScores,
    criterion: &mut String,
    run: &str,
) {
    let Some(dataset) = scores.datasets().first().cloned() else {
        return;
    };
    ui.horizontal(|ui| {
        let l = ui.label("validation criterion");
        let metrics = metric_names(scores);
        egui::ComboBox::from_id_salt(("criterion", run))
            .selected_text(criterion.as_str())
            .show_ui(ui, |ui| {
                for c in metrics.iter().chain(scores.criteria()) {
                    ui.selectable_value(criterion, c.clone(), c);
                }
            })
            .response
            .labelled_by(l.id);
    });
    let channels: Vec<&String> = scores
        .criteria()
        .iter()
        .filter(|c| *c == criterion || c.ends_with(&format!("__{criterion}")))
        .collect();
    let lines: Vec<(String, Vec<[f64; 2]>)> = scores
        .parameters()
        .iter()
        .map(|p| {
            let points = scores
                .iterations()
                .filter_map(|it| {
                    let vals: Vec<f64> = channels
                        .iter()
                        .filter_map(|c| scores.value(it, &dataset, p, c))
                        .filter(|v| v.is_finite())
                        .collect();
                    (!vals.is_empty())
                        .then(|| [it as f64, vals.iter().sum::<f64>() / vals.len() as f64])
                })
                .collect();
            (p.clone(), points)
        })
        .collect();
    match scores.best_for(&dataset, criterion) {
        Some((it, p, v)) => {
            ui.label(format!(
                "best {criterion} on {dataset}: {v:.4} at iteration {it} with {}",
                scores
                    .parameters()
                    .get(p)
                    .map(String::as_str)
                    .unwrap_or("?")
            ));
        }
        None => {
            ui.weak(format!("no {criterion} scores yet"));
        }
    }
    egui_plot::Plot::new(("validation-plot", run))
        .height(160.0)
        .legend(egui_plot::Legend::default())
        .x_axis_label("iteration")
        .y_axis_label(criterion.as_str())
        .show(ui, |plot| {
            for (name, points) in lines {
                plot.line(egui_plot::Line::new(
                    name,
                    egui_plot::PlotPoints::from(points),
                ));
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_follows_the_exponential_average() {
        let s = smoothed(&[[0.0, 1.0], [1.0, 0.0], [2.0, 0.0]], 0.5);
        assert_eq!(s, vec![[0.0, 1.0], [1.0, 0.5], [2.0, 0.25]]);
    }
}
