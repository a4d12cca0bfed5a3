//! Writer for the `torch.save` zip format (what `torch.load` reads), for exporting Segno
//! checkpoints as files DaCapo loads. The saved object is a tree of plain Python values
//! ([`Py`]) whose tensors are float32 storages: `data.pkl` is a protocol-2 pickle that
//! rebuilds each tensor with `torch._utils._rebuild_tensor_v2` from a persistent-id storage
//! `archive/data/<k>`, every record 64-byte aligned as `torch.save` writes them. Only
//! globals `torch.load(weights_only=True)` accepts are used (`collections.OrderedDict`,
//! `torch._utils._rebuild_tensor_v2`, `torch.FloatStorage`).

use std::io::Write;
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// A Python value to pickle.
#[derive(Debug, Clone, PartialEq)]
pub enum Py {
    /// `None`.
    None,
    /// `True`/`False`.
    Bool(bool),
    /// An `int`.
    Int(i64),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `tuple`.
    Tuple(Vec<Py>),
    /// A `list`.
    List(Vec<Py>),
    /// A `dict`, items in order.
    Dict(Vec<(Py, Py)>),
    /// A `collections.OrderedDict` (what `state_dict()` returns).
    OrderedDict(Vec<(Py, Py)>),
    /// A contiguous float32 tensor of `shape` over storage `storage` (an index into the
    /// storages given to [`write`]); tensors may share a storage.
    Tensor {
        /// Index of its storage.
        storage: usize,
        /// Its shape.
        shape: Vec<i64>,
    },
}

/// Errors writing a `torch.save` file.
#[derive(Debug, thiserror::Error)]
pub enum TorchSaveError {
    /// The file could not be written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The value tree is inconsistent (a tensor larger than its storage, …).
    #[error("cannot save: {0}")]
    Invalid(String),
}

/// Writes `root` with float32 `storages` to `path` in the `torch.save` zip format, through
/// a temporary file renamed into place.
pub fn write(path: &Path, root: &Py, storages: &[Vec<f32>]) -> Result<(), TorchSaveError> {
    let mut pickle = vec![0x80, 2];
    emit(&mut pickle, root, storages)?;
    pickle.push(b'.');
    let io = |e: &dyn std::fmt::Display| TorchSaveError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let folder = "archive";
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.partial",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("weights")
    ));
    let file = std::fs::File::create(&tmp).map_err(|e| io(&e))?;
    let mut zip = ZipWriter::new(file);
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .with_alignment(64)
        .large_file(storages.iter().map(Vec::len).sum::<usize>() * 4 > (u32::MAX as usize) / 2);
    let mut record = |name: &str, bytes: &[u8]| -> Result<(), TorchSaveError> {
        zip.start_file(format!("{folder}/{name}"), options)
            .map_err(|e| io(&e))?;
        zip.write_all(bytes).map_err(|e| io(&e))
    };
    record("data.pkl", &pickle)?;
    record(".format_version", b"1")?;
    record(".storage_alignment", b"64")?;
    record("byteorder", b"little")?;
    for (k, s) in storages.iter().enumerate() {
        let bytes: Vec<u8> = s.iter().flat_map(|v| v.to_le_bytes()).collect();
        record(&format!("data/{k}"), &bytes)?;
    }
    record("version", b"3\n")?;
    record(
        ".data/serialization_id",
        b"0000000000000000000000000000000000000000",
    )?;
    let file = zip.finish().map_err(|e| io(&e))?;
    file.sync_all().map_err(|e| io(&e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| io(&e))
}

fn unicode(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn global(out: &mut Vec<u8>, module: &str, name: &str) {
    out.push(b'c');
    out.extend_from_slice(module.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
}

fn int(out: &mut Vec<u8>, v: i64) {
    if (0..256).contains(&v) {
        out.extend_from_slice(&[b'K', v as u8]);
    } else if let Ok(v) = i32::try_from(v) {
        out.push(b'J');
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        // LONG1: little-endian two's complement.
        out.extend_from_slice(&[0x8a, 8]);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn items(
    out: &mut Vec<u8>,
    pairs: &[(Py, Py)],
    storages: &[Vec<f32>],
) -> Result<(), TorchSaveError> {
    if pairs.is_empty() {
        return Ok(());
    }
    out.push(b'(');
    for (k, v) in pairs {
        emit(out, k, storages)?;
        emit(out, v, storages)?;
    }
    out.push(b'u');
    Ok(())
}

fn emit(out: &mut Vec<u8>, value: &Py, storages: &[Vec<f32>]) -> Result<(), TorchSaveError> {
    match value {
        Py::None => out.push(b'N'),
        Py::Bool(b) => out.push(if *b { 0x88 } else { 0x89 }),
        Py::Int(v) => int(out, *v),
        Py::Float(v) => {
            out.push(b'G');
            out.extend_from_slice(&v.to_be_bytes());
        }
        Py::Str(s) => unicode(out, s),
        Py::Tuple(v) => {
            out.push(b'(');
            for x in v {
                emit(out, x, storages)?;
            }
            out.push(b't');
        }
        Py::List(v) => {
            out.push(b']');
            if !v.is_empty() {
                out.push(b'(');
                for x in v {
                    emit(out, x, storages)?;
                }
                out.push(b'e');
            }
        }
        Py::Dict(pairs) => {
            out.push(b'}');
            items(out, pairs, storages)?;
        }
        Py::OrderedDict(pairs) => {
            global(out, "collections", "OrderedDict");
            out.extend_from_slice(b")R");
            items(out, pairs, storages)?;
        }
        Py::Tensor { storage, shape } => {
            let numel: i64 = shape.iter().product();
            let available = storages
                .get(*storage)
                .ok_or_else(|| TorchSaveError::Invalid(format!("no storage {storage}")))?
                .len();
            if shape.iter().any(|n| *n < 0) || numel as usize > available {
                return Err(TorchSaveError::Invalid(format!(
                    "a tensor of shape {shape:?} does not fit storage {storage} ({available} values)"
                )));
            }
            let mut stride = vec![1i64; shape.len()];
            for i in (0..shape.len().saturating_sub(1)).rev() {
                stride[i] = stride[i + 1] * shape[i + 1];
            }
            global(out, "torch._utils", "_rebuild_tensor_v2");
            out.push(b'(');
            // Persistent id ('storage', torch.FloatStorage, key, location, numel).
            out.push(b'(');
            unicode(out, "storage");
            global(out, "torch", "FloatStorage");
            unicode(out, &storage.to_string());
            unicode(out, "cpu");
            int(out, available as i64);
            out.extend_from_slice(b"tQ");
            int(out, 0);
            emit(
                out,
                &Py::Tuple(shape.iter().map(|n| Py::Int(*n)).collect()),
                storages,
            )?;
            emit(
                out,
                &Py::Tuple(stride.iter().map(|n| Py::Int(*n)).collect()),
                storages,
            )?;
            out.push(0x89);
            global(out, "collections", "OrderedDict");
            out.extend_from_slice(b")R");
            out.extend_from_slice(b"tR");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::torch_pickle::{self, Value};

    #[test]
    fn what_is_written_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.pt");
        let root = Py::Dict(vec![
            (
                Py::Str("model".into()),
                Py::OrderedDict(vec![
                    (
                        Py::Str("a.weight".into()),
                        Py::Tensor {
                            storage: 0,
                            shape: vec![2, 3],
                        },
                    ),
                    (
                        Py::Str("chain.0.weight".into()),
                        Py::Tensor {
                            storage: 0,
                            shape: vec![2, 3],
                        },
                    ),
                    (
                        Py::Str("b".into()),
                        Py::Tensor {
                            storage: 1,
                            shape: vec![],
                        },
                    ),
                ]),
            ),
            (
                Py::Str("n".into()),
                Py::List(vec![Py::Int(-3), Py::Int(70000), Py::Float(0.25), Py::None]),
            ),
            (Py::Int(5), Py::Tuple(vec![Py::Bool(true), Py::Bool(false)])),
        ]);
        let storages = vec![vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], vec![-1.5]];
        write(&path, &root, &storages).unwrap();
        let v = torch_pickle::read(&path).unwrap();
        let model = torch_pickle::state_dict(&v).unwrap();
        assert_eq!(model.len(), 3);
        assert_eq!(model[0].0, "a.weight");
        assert_eq!(model[0].1.shape, vec![2, 3]);
        assert_eq!(model[0].1.to_f32(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(model[1].1.to_f32(), model[0].1.to_f32());
        assert_eq!(model[2].1.to_f32(), vec![-1.5]);
        let n = v.get("n").unwrap().as_seq().unwrap();
        assert_eq!(n[0].as_int(), Some(-3));
        assert_eq!(n[1].as_int(), Some(70000));
        assert_eq!(n[2].as_float(), Some(0.25));
        assert_eq!(n[3], Value::None);
        // A tensor larger than its storage is refused.
        let bad = Py::Tensor {
            storage: 1,
            shape: vec![2],
        };
        assert!(write(&path, &bad, &storages).is_err());
    }
}
