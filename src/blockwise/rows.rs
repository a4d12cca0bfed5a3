//! Per-block tables too large for a ledger record (a segmentation's face contacts, an
//! evaluation's contingency table), kept as files of fixed-width rows of u64: eight bytes
//! naming the table's kind, then the rows, little-endian. Written atomically, so a block's
//! table is either whole or absent; the ledger lists the block only after it is written.

use std::path::Path;

use crate::train::TrainError;

/// Writes `rows` to `path` after `magic` (temporary file + rename).
pub(super) fn store<const W: usize>(
    path: &Path,
    magic: &[u8; 8],
    rows: &[[u64; W]],
) -> Result<(), TrainError> {
    let mut bytes = Vec::with_capacity(8 + 8 * W * rows.len());
    bytes.extend_from_slice(magic);
    for row in rows {
        for v in row {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    crate::store::atomic::write_atomic(path, &bytes, true)
        .map_err(|e| TrainError::Data(format!("{}: {e}", path.display())))
}

/// Reads the rows of the table at `path`, refusing a file of another kind or length.
pub(super) fn load<const W: usize>(
    path: &Path,
    magic: &[u8; 8],
) -> Result<Vec<[u64; W]>, TrainError> {
    let bytes =
        std::fs::read(path).map_err(|e| TrainError::Data(format!("{}: {e}", path.display())))?;
    let body = bytes
        .strip_prefix(magic.as_slice())
        .filter(|b| b.len() % (8 * W) == 0)
        .ok_or_else(|| {
            TrainError::Data(format!(
                "{}: not a table of {} written by Segno",
                path.display(),
                String::from_utf8_lossy(magic)
            ))
        })?;
    Ok(body
        .chunks_exact(8 * W)
        .map(|row| {
            let mut out = [0u64; W];
            for (v, b) in out.iter_mut().zip(row.chunks_exact(8)) {
                let mut w = [0u8; 8];
                w.copy_from_slice(b);
                *v = u64::from_le_bytes(w);
            }
            out
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_as_written_and_other_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t/1.bin");
        let rows = vec![[1u64, u64::MAX, 3], [0, 7, 1 << 63]];
        store(&path, b"SGNTEST1", &rows).unwrap();
        assert_eq!(load::<3>(&path, b"SGNTEST1").unwrap(), rows);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8 + 48);
        let e = load::<3>(&path, b"SGNOTHER").unwrap_err().to_string();
        assert!(e.contains("1.bin") && e.contains("SGNOTHER"), "{e}");
        let e = load::<4>(&path, b"SGNTEST1").unwrap_err().to_string();
        assert!(e.contains("not a table"), "{e}");
    }
}
