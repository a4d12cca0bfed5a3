//! The zip archive `torch.save` writes: finding `data.pkl` and its storage entries, with
//! every size checked against the file, and bare pickles without tensors.

use super::*;

/// Reads a checkpoint written by `torch.save` (zip format) and returns the saved object.
pub fn read(path: &Path) -> Result<Value, TorchPickleError> {
    let io_error = |source| TorchPickleError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let file_len = file.metadata().map_err(io_error)?.len();
    let mut first = [0u8; 1];
    let got = file.read(&mut first).map_err(io_error)?;
    // A legacy checkpoint is a bare pickle, which starts with the PROTO opcode.
    if got == 1 && first[0] == 0x80 {
        return Err(TorchPickleError::LegacyFormat {
            path: path.to_path_buf(),
        });
    }
    file.rewind().map_err(io_error)?;
    let archive =
        ZipArchive::new(BufReader::new(file)).map_err(|source| TorchPickleError::NotZip {
            path: path.to_path_buf(),
            source,
        })?;
    read_archive(archive, file_len)
}

pub(super) fn read_archive<R: Read + Seek>(
    mut archive: ZipArchive<R>,
    file_len: u64,
) -> Result<Value, TorchPickleError> {
    let mut folders: Vec<String> = archive
        .file_names()
        .filter_map(|name| name.strip_suffix("/data.pkl"))
        .filter(|folder| !folder.is_empty() && !folder.contains('/'))
        .map(str::to_owned)
        .collect();
    folders.sort();
    folders.dedup();
    let folder = match folders.len() {
        0 => {
            return Err(TorchPickleError::MissingDataPkl {
                entries: archive.file_names().take(20).map(str::to_owned).collect(),
            });
        }
        1 => folders.swap_remove(0),
        _ => return Err(TorchPickleError::AmbiguousArchive { folders }),
    };

    if let Some(order) = read_entry(&mut archive, &format!("{folder}/byteorder"), 64, file_len)? {
        let order = String::from_utf8_lossy(&order);
        if order.trim() != "little" {
            return Err(TorchPickleError::BigEndian {
                found: order.trim().to_owned(),
            });
        }
    }

    let pickle_name = format!("{folder}/data.pkl");
    let pickle = read_entry(&mut archive, &pickle_name, MAX_PICKLE_BYTES + 1, file_len)?
        .ok_or_else(|| TorchPickleError::MissingDataPkl {
            entries: vec![pickle_name],
        })?;
    if pickle.len() as u64 > MAX_PICKLE_BYTES {
        return Err(TorchPickleError::LimitExceeded {
            reason: format!("data.pkl is larger than {MAX_PICKLE_BYTES} bytes"),
        });
    }
    let mut storages = ZipStorages {
        archive,
        folder,
        file_len,
        cache: HashMap::new(),
        loaded: 0,
    };
    unpickle(&pickle, &mut storages)
}

/// Reads the first `limit` bytes (or fewer) of entry `name`; `None` when there is no such
/// entry.
pub(super) fn read_entry<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    name: &str,
    limit: u64,
    file_len: u64,
) -> Result<Option<Vec<u8>>, TorchPickleError> {
    let entry_error = |source| TorchPickleError::ZipEntry {
        entry: name.to_owned(),
        source,
    };
    let Some(index) = archive.index_for_name(name) else {
        return Ok(None);
    };
    // `torch.serialization.set_crc32_options(False)` makes torch.save write 0 for every
    // CRC-32; such stored (uncompressed) entries are read raw, without the check.
    let unchecked = {
        let raw = archive.by_index_raw(index).map_err(entry_error)?;
        raw.crc32() == 0 && raw.compression() == CompressionMethod::Stored
    };
    let entry = if unchecked {
        archive.by_index_raw(index)
    } else {
        archive.by_index(index)
    }
    .map_err(entry_error)?;
    // The declared size is only a hint: reserve no more than the archive itself holds.
    let reserve = entry.size().min(limit).min(file_len);
    let mut buf = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
    // One byte more than wanted, so that an entry of exactly `limit` bytes is read to its end,
    // where the CRC-32 is checked.
    entry
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| entry_error(ZipError::Io(e)))?;
    buf.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(Some(buf))
}

/// Source of storage bytes for persistent ids, cached by key.
pub(super) trait StorageLoader {
    /// Makes sure the first `len` bytes of storage `key` are cached.
    fn ensure(&mut self, key: &str, len: usize) -> Result<(), TorchPickleError>;
    /// The cached bytes of storage `key`.
    fn bytes(&self, key: &str) -> Option<&[u8]>;
    /// Removes storage `key` from the cache, returning its bytes.
    fn take(&mut self, key: &str) -> Option<Vec<u8>>;
    /// Total bytes of storage read so far.
    fn loaded_bytes(&self) -> usize;
}

pub(super) struct ZipStorages<R> {
    pub(super) archive: ZipArchive<R>,
    pub(super) folder: String,
    pub(super) file_len: u64,
    pub(super) cache: HashMap<String, Vec<u8>>,
    pub(super) loaded: usize,
}

impl<R: Read + Seek> StorageLoader for ZipStorages<R> {
    fn ensure(&mut self, key: &str, len: usize) -> Result<(), TorchPickleError> {
        if self.cache.get(key).is_some_and(|b| b.len() >= len) {
            return Ok(());
        }
        let entry = format!("{}/data/{}", self.folder, key);
        let bytes =
            read_entry(&mut self.archive, &entry, len as u64, self.file_len)?.ok_or_else(|| {
                TorchPickleError::MissingStorage {
                    entry: entry.clone(),
                }
            })?;
        if bytes.len() < len {
            return Err(TorchPickleError::TruncatedStorage {
                entry,
                needed: len as u64,
                available: bytes.len() as u64,
            });
        }
        let previous = self
            .cache
            .insert(key.to_owned(), bytes)
            .map_or(0, |b| b.len());
        self.loaded = self.loaded.saturating_add(len.saturating_sub(previous));
        Ok(())
    }

    fn bytes(&self, key: &str) -> Option<&[u8]> {
        self.cache.get(key).map(Vec::as_slice)
    }

    fn take(&mut self, key: &str) -> Option<Vec<u8>> {
        self.cache.remove(key)
    }

    fn loaded_bytes(&self) -> usize {
        self.loaded
    }
}

/// A loader for bare pickles, which hold no tensors: any storage is refused.
pub(super) struct NoStorages;

impl StorageLoader for NoStorages {
    fn ensure(&mut self, key: &str, _len: usize) -> Result<(), TorchPickleError> {
        Err(TorchPickleError::Malformed {
            offset: 0,
            reason: format!("a plain pickle refers to tensor storage `{key}`"),
        })
    }

    fn bytes(&self, _key: &str) -> Option<&[u8]> {
        None
    }

    fn take(&mut self, _key: &str) -> Option<Vec<u8>> {
        None
    }

    fn loaded_bytes(&self) -> usize {
        0
    }
}

/// Reads a bare Python pickle without tensors (protocols 2–5; e.g. DaCapo's training
/// statistics and validation scores files), with the same checks as [`read`].
pub fn read_plain(path: &Path) -> Result<Value, TorchPickleError> {
    let io_error = |source| TorchPickleError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io_error)?.len();
    if len > MAX_PICKLE_BYTES {
        return Err(TorchPickleError::LimitExceeded {
            reason: format!("{} is larger than {MAX_PICKLE_BYTES} bytes", path.display()),
        });
    }
    let data = std::fs::read(path).map_err(io_error)?;
    unpickle(&data, &mut NoStorages)
}
