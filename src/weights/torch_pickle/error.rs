//! Everything that can go wrong reading a checkpoint, each naming what the file says.

use super::*;

/// Everything that can go wrong reading a checkpoint.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TorchPickleError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is a bare pickle: the legacy format of `torch.save` before PyTorch 1.6.
    #[error(
        "{} is in the legacy (pre-1.6, non-zip) torch.save format, which is not supported; \
         re-save it with torch.save(..., _use_new_zipfile_serialization=True)",
        path.display()
    )]
    LegacyFormat {
        /// The checkpoint file.
        path: PathBuf,
    },
    /// The file is not a readable zip archive (corrupt, truncated, or not a checkpoint).
    #[error(
        "{} is not a readable zip archive ({source}); if it was written by torch.save before \
         PyTorch 1.6, re-save it with torch.save(..., _use_new_zipfile_serialization=True)",
        path.display()
    )]
    NotZip {
        /// The checkpoint file.
        path: PathBuf,
        /// What the zip reader reported.
        #[source]
        source: ZipError,
    },
    /// An archive entry exists but could not be read (corrupt or damaged data).
    #[error("cannot read zip entry {entry}: {source}")]
    ZipEntry {
        /// Name of the entry.
        entry: String,
        /// What the zip reader reported.
        #[source]
        source: ZipError,
    },
    /// No `<folder>/data.pkl` entry: the archive is not a `torch.save` checkpoint.
    #[error("no <folder>/data.pkl entry in the archive; its first entries are {entries:?}")]
    MissingDataPkl {
        /// The first entry names of the archive (at most 20).
        entries: Vec<String>,
    },
    /// More than one top-level folder holds a `data.pkl`.
    #[error("the archive holds several checkpoints, in folders {folders:?}")]
    AmbiguousArchive {
        /// The folders that hold a `data.pkl`.
        folders: Vec<String>,
    },
    /// `<folder>/byteorder` names an order other than `little`.
    #[error(
        "the checkpoint's byte order is {found:?}; only little-endian checkpoints are supported"
    )]
    BigEndian {
        /// The content of the `byteorder` entry.
        found: String,
    },
    /// The pickle uses an opcode this reader does not implement.
    #[error("unsupported pickle opcode 0x{opcode:02x} ({}) at offset {offset}", opcode_name(*.opcode))]
    UnsupportedOpcode {
        /// The opcode byte.
        opcode: u8,
        /// Its offset in `data.pkl`.
        offset: usize,
    },
    /// An opcode needed more values than the pickle stack (above the last mark) holds.
    #[error("pickle stack underflow at offset {offset} (opcode {opcode})")]
    StackUnderflow {
        /// Name of the opcode.
        opcode: &'static str,
        /// Its offset in `data.pkl`.
        offset: usize,
    },
    /// The pickle is inconsistent: truncated, wrong argument types, unknown memo key, ...
    #[error("malformed pickle at offset {offset}: {reason}")]
    Malformed {
        /// Offset in `data.pkl` of the opcode being executed.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// An integer in the pickle does not fit in an `i64`.
    #[error("integer at offset {offset} does not fit in 64 bits")]
    IntegerTooLarge {
        /// Offset in `data.pkl` of the opcode.
        offset: usize,
    },
    /// A tensor refers to a storage that has no entry in the archive.
    #[error("storage entry {entry} is missing from the archive")]
    MissingStorage {
        /// Name of the missing archive entry.
        entry: String,
    },
    /// A storage entry holds fewer bytes than its tensors need.
    #[error("storage entry {entry} is truncated: {needed} bytes needed, {available} available")]
    TruncatedStorage {
        /// Name of the archive entry.
        entry: String,
        /// Bytes the pickle says the storage has.
        needed: u64,
        /// Bytes the entry holds.
        available: u64,
    },
    /// A tensor has an element type this reader does not support (complex, quantized, ...).
    #[error("unsupported tensor dtype {name}")]
    UnsupportedDtype {
        /// The storage class or dtype, e.g. `torch.ComplexFloatStorage` or `torch.uint16`.
        name: String,
    },
    /// The file asks for more memory or nesting than its actual content justifies.
    #[error("checkpoint rejected: {reason}")]
    LimitExceeded {
        /// Which limit and why.
        reason: String,
    },
    /// [`state_dict`] found no dict of tensors where it looked.
    #[error(
        "no state dict found: expected a dict of tensors, or a dict with one under \"model\" or \
         \"state_dict\"; the top-level value is a {top_kind} with keys {keys:?}"
    )]
    NoStateDict {
        /// What the top-level value is (`dict`, `list`, ...).
        top_kind: &'static str,
        /// The top-level keys when it is a dict.
        keys: Vec<String>,
    },
    /// No state dict was found, and the pickle calls functions or classes outside what this
    /// reader interprets (for example `posix.system`). They were never run: the reader only
    /// records such calls, so a hostile checkpoint is refused here with the calls named.
    #[error(
        "no state dict found; the checkpoint calls {}, which Segno does not run (it interprets \
         only torch's tensor-rebuilding functions and plain containers, never other pickle \
         globals)",
        globals.join(", ")
    )]
    RefusedGlobals {
        /// The uninterpreted callables as `module.name`, in the order found (at most 8).
        globals: Vec<String>,
    },
}
