//! Compute devices: which ones libtorch sees here and which one a command uses (CUDA when
//! present and wanted, otherwise the CPU). The one module that asks libtorch about devices.

use std::fmt;

/// Errors choosing a compute device.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    /// The requested device name is not understood.
    #[error("unknown device {0:?}: use auto, cpu, cuda or cuda:N")]
    Unknown(String),
    /// The options file that says which device `auto` means cannot be read.
    #[error("{0}")]
    Options(String),
    /// CUDA was requested but libtorch sees no usable GPU.
    #[error("device {requested:?} was requested but {reason}")]
    Unavailable {
        /// The requested device.
        requested: String,
        /// Why it cannot be used.
        reason: String,
    },
}

/// Whether libtorch sees a usable CUDA device on this machine.
pub fn cuda_available() -> bool {
    tch::Cuda::is_available()
}

/// The device `auto` stands for under an options file's compute context: its LocalTorch
/// `device` when it names one (DaCapo's `compute_context: {type: LocalTorch, config:
/// {device: …}}`), else `None` (the first GPU, or the CPU).
pub fn auto_device(options: Option<&crate::config::OptionsConfig>) -> Option<String> {
    use crate::config::options::{ComputeContextConfig, LocalTorchConfig};
    match options.map(|o| &o.compute_context) {
        Some(ComputeContextConfig::LocalTorch(local @ LocalTorchConfig { .. })) => {
            local.device.clone()
        }
        _ => None,
    }
}

/// Picks the device for `request`, where `auto` (or nothing) means the options file's
/// LocalTorch device when one applies and names a device (see [`auto_device`]).
pub fn choose_device_with_options(request: Option<&str>) -> Result<tch::Device, DeviceError> {
    let auto = matches!(request.map(str::trim), None | Some("auto") | Some(""));
    if auto {
        let options = crate::store::read_options(&crate::store::options_file_candidates())
            .map_err(|e| DeviceError::Options(e.to_string()))?;
        if let Some(device) = auto_device(options.as_ref().map(|(_, o)| o)) {
            return choose_device(Some(&device));
        }
    }
    choose_device(request)
}

/// Picks the device for `request`: `None`/`"auto"` → the first GPU if CUDA is available,
/// else the CPU; `"cpu"`; `"cuda"` / `"cuda:N"` → that GPU, or an error if it is missing.
pub fn choose_device(request: Option<&str>) -> Result<tch::Device, DeviceError> {
    let gpus = if tch::Cuda::is_available() {
        usize::try_from(tch::Cuda::device_count()).unwrap_or(0)
    } else {
        0
    };
    choose_device_among(request, gpus)
}

/// [`choose_device`] for a machine with `gpus` usable CUDA devices (testable without one).
pub fn choose_device_among(request: Option<&str>, gpus: usize) -> Result<tch::Device, DeviceError> {
    let request = request.map(str::trim).unwrap_or("auto");
    let want_gpu = |index: usize| {
        if index < gpus {
            Ok(tch::Device::Cuda(index))
        } else if gpus == 0 {
            Err(DeviceError::Unavailable {
                requested: request.to_string(),
                reason: "libtorch reports no CUDA device on this machine".to_string(),
            })
        } else {
            Err(DeviceError::Unavailable {
                requested: request.to_string(),
                reason: format!(
                    "only {gpus} CUDA device(s) exist (cuda:0 … cuda:{})",
                    gpus - 1
                ),
            })
        }
    };
    match request {
        "auto" | "" => Ok(if gpus > 0 {
            tch::Device::Cuda(0)
        } else {
            tch::Device::Cpu
        }),
        "cpu" => Ok(tch::Device::Cpu),
        "cuda" | "gpu" => want_gpu(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => want_gpu(i),
            _ => Err(DeviceError::Unknown(other.to_string())),
        },
    }
}

/// Number of CUDA devices libtorch can use here (0 without CUDA).
pub fn cuda_device_count() -> usize {
    if tch::Cuda::is_available() {
        usize::try_from(tch::Cuda::device_count()).unwrap_or(0)
    } else {
        0
    }
}

/// The number of threads libtorch uses for CPU work in this process.
pub fn cpu_threads() -> usize {
    usize::try_from(tch::get_num_threads()).unwrap_or(1).max(1)
}

/// Sets the number of threads libtorch uses for CPU work in this process.
pub fn set_cpu_threads(threads: usize) {
    tch::set_num_threads(i32::try_from(threads.max(1)).unwrap_or(i32::MAX));
}

/// Where each of `workers` local worker processes runs, as `(device, CPU threads)`: one
/// worker per CUDA device (round robin) when `device` is a GPU and `gpus` exist, the CPU
/// otherwise; the machine's `cpus` divided between them (at least one each).
pub fn worker_placement(
    device: tch::Device,
    workers: usize,
    gpus: usize,
    cpus: usize,
) -> Vec<(String, usize)> {
    let workers = workers.max(1);
    let threads = (cpus / workers).max(1);
    (0..workers)
        .map(|i| match device {
            tch::Device::Cuda(_) if gpus > 0 => (format!("cuda:{}", i % gpus), threads),
            _ => ("cpu".to_string(), threads),
        })
        .collect()
}

/// What this build of libtorch can use, for `segno info` and bug reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeInfo {
    /// Whether CUDA is usable.
    pub cuda_available: bool,
    /// Number of CUDA devices.
    pub cuda_devices: i64,
    /// Whether cuDNN is usable.
    pub cudnn_available: bool,
    /// Threads libtorch uses for CPU work.
    pub cpu_threads: i32,
}

impl RuntimeInfo {
    /// Queries libtorch.
    pub fn query() -> Self {
        Self {
            cuda_available: tch::Cuda::is_available(),
            cuda_devices: tch::Cuda::device_count(),
            cudnn_available: tch::Cuda::cudnn_is_available(),
            cpu_threads: tch::get_num_threads(),
        }
    }
}

impl fmt::Display for RuntimeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CUDA: {} ({} device(s), cuDNN {}), CPU threads: {}",
            if self.cuda_available {
                "available"
            } else {
                "not available"
            },
            self.cuda_devices,
            if self.cudnn_available { "yes" } else { "no" },
            self.cpu_threads
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_split_the_gpus_round_robin_and_the_cpus_evenly() {
        let cpu = worker_placement(tch::Device::Cpu, 2, 0, 8);
        assert_eq!(cpu, vec![("cpu".to_string(), 4), ("cpu".to_string(), 4)]);
        let gpu = worker_placement(tch::Device::Cuda(0), 3, 2, 8);
        let devices: Vec<&str> = gpu.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(devices, vec!["cuda:0", "cuda:1", "cuda:0"]);
        assert!(gpu.iter().all(|(_, t)| *t == 2));
        // More workers than CPUs: one thread each; CUDA asked for without GPUs: the CPU.
        let many = worker_placement(tch::Device::Cuda(0), 4, 0, 2);
        assert!(many.iter().all(|(d, t)| d == "cpu" && *t == 1));
    }

    #[test]
    fn device_choice_without_gpu() {
        assert_eq!(choose_device_among(None, 0), Ok(tch::Device::Cpu));
        assert_eq!(choose_device_among(Some("auto"), 0), Ok(tch::Device::Cpu));
        assert_eq!(choose_device_among(Some("cpu"), 0), Ok(tch::Device::Cpu));
        assert!(matches!(
            choose_device_among(Some("cuda"), 0),
            Err(DeviceError::Unavailable { .. })
        ));
        assert_eq!(
            choose_device_among(Some("tpu"), 0),
            Err(DeviceError::Unknown("tpu".into()))
        );
    }

    #[test]
    fn device_choice_with_gpus() {
        assert_eq!(choose_device_among(None, 2), Ok(tch::Device::Cuda(0)));
        assert_eq!(
            choose_device_among(Some("cuda:1"), 2),
            Ok(tch::Device::Cuda(1))
        );
        assert!(matches!(
            choose_device_among(Some("cuda:2"), 2),
            Err(DeviceError::Unavailable { reason, .. }) if reason.contains("only 2")
        ));
        assert_eq!(choose_device_among(Some("cpu"), 2), Ok(tch::Device::Cpu));
    }
}
