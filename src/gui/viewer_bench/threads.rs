//! CPU time of this process's threads by what they do, from Linux's per-thread scheduler
//! statistics: the app's own work apart from the graphics driver's, which on a software
//! rasteriser such as lavapipe is the work a GPU would do.
//!
//! Segno names every thread it starts `segno-…` (the rayon pool too, see `main`); threads
//! that kept the process's name (whatever the binary is called) or carry another are the
//! driver's (lavapipe's queue and shader cache threads, its `llvmpipe-N` rasteriser
//! threads).

use std::path::Path;

/// CPU time used by the process's threads, by group, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct ThreadCpu {
    /// The main thread, but for reading the image back: planning or composing slices,
    /// writing uploads and recording GPU commands.
    pub main_ms: f64,
    /// The chunk readers (`segno-chunks-*`): reading and decoding chunks.
    pub readers_ms: f64,
    /// Segno's other threads (`segno-…`: the rayon pool, model layers).
    pub other_ms: f64,
    /// The graphics driver's threads (every thread Segno did not name): on a software
    /// rasteriser, the drawing a GPU would do.
    pub driver_ms: f64,
    /// The main thread copying the drawn image out, the benchmark's stand-in for
    /// presenting it (a window presents without the CPU on a GPU).
    pub readback_ms: f64,
}

impl ThreadCpu {
    /// The CPU time the process's live threads have used so far (`None` where the system
    /// does not tell per-thread times).
    pub fn now() -> Option<ThreadCpu> {
        let pid = std::process::id();
        // Threads started without a name keep the process's (the binary's file name).
        let process = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
        let tasks = std::fs::read_dir("/proc/self/task").ok()?;
        let mut sum = ThreadCpu::default();
        for task in tasks.flatten() {
            let dir = task.path();
            let Some(ms) = thread_ms(&dir) else { continue };
            let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            let main = task
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<u32>().ok())
                == Some(pid);
            *sum.group(name.trim_end(), process.trim_end(), main) += ms;
        }
        Some(sum)
    }

    /// The group of a thread named `name` in a process named `process` (`main`: the
    /// process's first thread).
    fn group(&mut self, name: &str, process: &str, main: bool) -> &mut f64 {
        if main {
            &mut self.main_ms
        } else if name == process {
            &mut self.driver_ms
        } else if name.starts_with("segno-chunks") {
            &mut self.readers_ms
        } else if name.starts_with("segno-") {
            &mut self.other_ms
        } else {
            &mut self.driver_ms
        }
    }

    /// These times with `ms` of the main thread's moved to reading back.
    pub fn with_read_back(self, ms: f64) -> ThreadCpu {
        ThreadCpu {
            main_ms: self.main_ms - ms,
            readback_ms: self.readback_ms + ms,
            ..self
        }
    }

    /// The time used between `earlier` and `self`, divided by `frames`: per frame.
    pub fn per_frame_since(self, earlier: ThreadCpu, frames: usize) -> ThreadCpu {
        let n = frames.max(1) as f64;
        ThreadCpu {
            main_ms: (self.main_ms - earlier.main_ms) / n,
            readers_ms: (self.readers_ms - earlier.readers_ms) / n,
            other_ms: (self.other_ms - earlier.other_ms) / n,
            driver_ms: (self.driver_ms - earlier.driver_ms) / n,
            readback_ms: (self.readback_ms - earlier.readback_ms) / n,
        }
    }

    /// The app's own threads' time, reading back and the driver's apart: what the app
    /// itself used.
    pub fn app_ms(&self) -> f64 {
        self.drawing_ms() + self.readers_ms
    }

    /// The app's threads but the chunk readers: the frame's own work (planning or
    /// composing, uploads, recording GPU commands).
    pub fn drawing_ms(&self) -> f64 {
        self.main_ms + self.other_ms
    }

    /// Every group.
    pub fn total_ms(&self) -> f64 {
        self.app_ms() + self.driver_ms + self.readback_ms
    }
}

/// A thread's CPU time so far, ms: to the nanosecond from `schedstat`, else in clock ticks
/// from `stat`.
fn thread_ms(dir: &Path) -> Option<f64> {
    if let Ok(s) = std::fs::read_to_string(dir.join("schedstat")) {
        if let Some(ns) = s
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            return Some(ns / 1e6);
        }
    }
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_sec > 0).then(|| ticks * 1e3 / per_sec as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_busy_thread_counts_in_its_group_and_the_main_thread_in_its_own() {
        // Busy until this thread has used `ms` of CPU time.
        let spin = |ms: f64| {
            let cpu_ms = crate::render::headless::thread_cpu_ms;
            let start = cpu_ms();
            let mut x = 0u64;
            while cpu_ms() - start < ms {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        };
        let before = ThreadCpu::now().expect("per-thread times on Linux");
        // A thread named as the chunk readers are uses 200 ms, then stays alive until
        // measured (an exited thread's time leaves the sums).
        let (done, spun) = std::sync::mpsc::channel();
        let (measured, wait) = std::sync::mpsc::channel::<()>();
        let reader = std::thread::Builder::new()
            .name("segno-chunks-t".into())
            .spawn(move || {
                spin(200.0);
                let _ = done.send(());
                let _ = wait.recv();
            })
            .expect("spawn");
        spun.recv().expect("the reader spun");
        let after = ThreadCpu::now().expect("per-thread times on Linux");
        let _ = measured.send(());
        reader.join().expect("the reader ended");
        let d = after.per_frame_since(before, 2);
        // 200 ms over two "frames" (more if other tests of this process read chunks).
        assert!(d.readers_ms >= 100.0, "{d:?}");
        assert!((d.total_ms() - (d.app_ms() + d.driver_ms)).abs() < 1e-9);
    }

    #[test]
    fn threads_are_grouped_by_name_and_the_first_thread_is_the_main_one() {
        let mut t = ThreadCpu::default();
        for (name, main, ms) in [
            ("segno", true, 1.0),
            ("segno-chunks-0", false, 2.0),
            ("segno-chunks-mo", false, 4.0),
            ("llvmpipe-1", false, 8.0),
            ("segno-compute", false, 16.0),
            ("segno-chunks-x", true, 32.0),
            // A thread that kept the process's name, and a shader cache's.
            ("segno", false, 64.0),
            ("segno:disk$0", false, 128.0),
            ("segno-rayon-1", false, 256.0),
        ] {
            *t.group(name, "segno", main) += ms;
        }
        // A binary called `segno-new`: its unnamed threads are still the driver's.
        *t.group("segno-new", "segno-new", false) += 512.0;
        *t.group("segno-rayon-0", "segno-new", false) += 1024.0;
        let t = t.with_read_back(3.0);
        assert_eq!(
            t,
            ThreadCpu {
                main_ms: 30.0,
                readers_ms: 6.0,
                other_ms: 1296.0,
                driver_ms: 712.0,
                readback_ms: 3.0,
            }
        );
        assert_eq!(t.app_ms(), 1332.0);
        assert_eq!(t.total_ms(), 2047.0);
        let half = t.per_frame_since(ThreadCpu::default(), 2);
        assert_eq!(half.readers_ms, 3.0);
        assert_eq!(half.readback_ms, 1.5);
    }
}
