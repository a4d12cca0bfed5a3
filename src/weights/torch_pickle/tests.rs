//! Tests of the checkpoint reader on files written by PyTorch and on hostile ones.

use super::*;
use std::io::{Cursor, Write};
use zip::write::SimpleFileOptions;

/// A fixture record of expected.json, with panicking accessors for test code.
#[derive(Debug, Clone, PartialEq)]
struct Json(serde_json::Value);

impl Json {
    fn parse(text: &str) -> Json {
        // Python's json writes non-finite floats as bare words; keep them as strings.
        let text = text
            .replace("-Infinity", "\"-inf\"")
            .replace("Infinity", "\"inf\"")
            .replace("NaN", "\"NaN\"");
        Json(serde_json::from_str(&text).expect("expected.json is valid JSON"))
    }

    fn get(&self, key: &str) -> Json {
        Json(
            self.0
                .get(key)
                .unwrap_or_else(|| panic!("no key {key:?} in {:?}", self.0))
                .clone(),
        )
    }

    fn arr(&self) -> Vec<Json> {
        let a = self.0.as_array().expect("an array");
        a.iter().cloned().map(Json).collect()
    }

    fn str(&self) -> &str {
        self.0.as_str().expect("a string")
    }

    fn i64(&self) -> i64 {
        self.0.as_i64().expect("an integer")
    }

    fn f64(&self) -> f64 {
        match &self.0 {
            serde_json::Value::String(s) => s.parse().expect("a non-finite number"),
            v => v.as_f64().expect("a number"),
        }
    }
}

/// Folder of the fixtures written by `make_fixtures.py`, relative to the crate root.
const FIXTURES: &str = "tests/fixtures/torch";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(FIXTURES)
        .join(name)
}

fn expected() -> Json {
    Json::parse(&std::fs::read_to_string(fixture("expected.json")).unwrap())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares a tensor with a record written by make_fixtures.py, element by element.
fn check_tensor(t: &TensorData, exp: &Json, what: &str) {
    assert_eq!(format!("{:?}", t.dtype), exp.get("dtype").str(), "{what}");
    let shape: Vec<usize> = exp
        .get("shape")
        .arr()
        .iter()
        .map(|d| d.i64() as usize)
        .collect();
    assert_eq!(t.shape, shape, "{what}");
    assert_eq!(t.numel(), shape.iter().product::<usize>(), "{what}");
    assert_eq!(t.data.len(), t.numel() * t.dtype.size_in_bytes(), "{what}");
    assert_eq!(hex(&t.data), exp.get("hex").str(), "{what}");
    let want: Vec<u32> = exp
        .get("f32")
        .arr()
        .iter()
        .map(|v| (v.f64() as f32).to_bits())
        .collect();
    let got: Vec<u32> = t.to_f32().iter().map(|v| v.to_bits()).collect();
    assert_eq!(got, want, "{what}");
}

fn check_state_dict(sd: &[(String, TensorData)], exp: &Json) {
    let keys: Vec<&str> = sd.iter().map(|(k, _)| k.as_str()).collect();
    let want: Vec<String> = exp
        .arr()
        .iter()
        .map(|t| t.get("key").str().to_string())
        .collect();
    assert_eq!(keys, want);
    for ((key, tensor), exp) in sd.iter().zip(exp.arr()) {
        check_tensor(tensor, &exp, key);
    }
}

/// A file under the system temp folder, deleted on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("torchpickle-test-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn zip_bytes(entries: &[(&str, &[u8])], method: CompressionMethod) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(method);
    for (name, data) in entries {
        w.start_file(*name, options).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Reads a synthetic checkpoint through a temp file.
fn read_zip(name: &str, entries: &[(&str, &[u8])]) -> Result<Value, TorchPickleError> {
    let file = TempFile::new(name, &zip_bytes(entries, CompressionMethod::Stored));
    read(&file.0)
}

/// All entries of a fixture archive.
fn entries_of(name: &str) -> Vec<(String, Vec<u8>)> {
    let mut archive = ZipArchive::new(File::open(fixture(name)).unwrap()).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut f = archive.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().to_owned(), data)
        })
        .collect()
}

fn unpickle_bare(data: &[u8]) -> Result<Value, TorchPickleError> {
    struct NoStorages;
    impl StorageLoader for NoStorages {
        fn ensure(&mut self, key: &str, _: usize) -> Result<(), TorchPickleError> {
            Err(TorchPickleError::MissingStorage { entry: key.into() })
        }
        fn bytes(&self, _: &str) -> Option<&[u8]> {
            None
        }
        fn take(&mut self, _: &str) -> Option<Vec<u8>> {
            None
        }
        fn loaded_bytes(&self) -> usize {
            0
        }
    }
    unpickle(data, &mut NoStorages)
}

fn s(text: &str) -> Value {
    Value::Str(text.into())
}

fn object(module: &str, name: &str, args: Vec<Value>) -> Value {
    Value::Object {
        class: (module.into(), name.into()),
        args,
        state: None,
        list_items: Vec::new(),
        dict_items: Vec::new(),
    }
}

fn with_state(mut value: Value, new_state: Value) -> Value {
    if let Value::Object { state, .. } = &mut value {
        *state = Some(Box::new(new_state));
    }
    value
}

fn f32_tensor(shape: Vec<usize>, values: &[f32]) -> Value {
    Value::Tensor(TensorData {
        dtype: DType::F32,
        shape,
        data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    })
}

// Pickle building blocks (protocol 2).
fn p_str(text: &str) -> Vec<u8> {
    let mut v = vec![b'X'];
    v.extend((text.len() as u32).to_le_bytes());
    v.extend(text.as_bytes());
    v
}

fn p_int(i: i64) -> Vec<u8> {
    match i32::try_from(i) {
        Ok(small) => [&b"J"[..], &small.to_le_bytes()].concat(),
        Err(_) => [&b"\x8a\x08"[..], &i.to_le_bytes()].concat(),
    }
}

fn p_global(module: &str, name: &str) -> Vec<u8> {
    format!("c{module}\n{name}\n").into_bytes()
}

/// `(('storage', torch.<class>, key, 'cpu', numel),)` loaded as a persistent id.
fn storage_expr(class: &str, key: &str, numel: i64) -> Vec<u8> {
    let mut p = b"(".to_vec();
    p.extend(p_str("storage"));
    p.extend(p_global("torch", class));
    p.extend(p_str(key));
    p.extend(p_str("cpu"));
    p.extend(p_int(numel));
    p.extend(b"tQ");
    p
}

/// `_rebuild_tensor_v2(storage, offset, shape, stride, False, OrderedDict())`.
fn tensor_expr(
    class: &str,
    key: &str,
    numel: i64,
    offset: i64,
    shape: &[i64],
    stride: &[i64],
) -> Vec<u8> {
    let mut p = p_global("torch._utils", "_rebuild_tensor_v2");
    p.push(b'(');
    p.extend(storage_expr(class, key, numel));
    p.extend(p_int(offset));
    p.push(b'(');
    shape.iter().for_each(|&d| p.extend(p_int(d)));
    p.extend(b"t(");
    stride.iter().for_each(|&d| p.extend(p_int(d)));
    p.extend(b"t\x89");
    p.extend(p_global("collections", "OrderedDict"));
    p.extend(b")RtR");
    p
}

/// A protocol-2 pickle of a dict with string keys and pickled values.
fn dict_pickle(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut p = b"\x80\x02}(".to_vec();
    for (key, value) in entries {
        p.extend(p_str(key));
        p.extend(value);
    }
    p.extend(b"u.");
    p
}

/// `{'w': tensor}`.
fn tensor_pickle(
    class: &str,
    key: &str,
    numel: i64,
    offset: i64,
    shape: &[i64],
    stride: &[i64],
) -> Vec<u8> {
    dict_pickle(&[("w", tensor_expr(class, key, numel, offset, shape, stride))])
}

fn floats(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

// ---- fixtures written by real PyTorch ----

#[test]
fn plain_state_dict() {
    let exp = expected();
    let value = read(&fixture("plain_state_dict.pt")).unwrap();
    let sd = state_dict(&value).unwrap();
    check_state_dict(&sd, &exp.get("plain_state_dict.pt").get("tensors"));
    let keys: Vec<&str> = sd.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert_eq!(sd[0].1.shape, [2, 1, 3, 3, 3]);
    assert_eq!(into_state_dict(value).unwrap(), sd);
}

#[test]
fn dacapo_checkpoint() {
    let exp = expected();
    let exp = exp.get("dacapo_checkpoint.pt");
    let value = read(&fixture("dacapo_checkpoint.pt")).unwrap();
    let sd = state_dict(&value).unwrap();
    check_state_dict(&sd, &exp.get("model"));
    assert_eq!(value.get("iteration"), Some(&Value::Int(7)));

    let optimizer = value.get("optimizer").unwrap();
    let group = &optimizer.get("param_groups").unwrap().as_seq().unwrap()[0];
    assert_eq!(
        group.get("lr").and_then(Value::as_float),
        Some(exp.get("lr").f64())
    );
    let betas: Vec<f64> = exp.get("betas").arr().iter().map(Json::f64).collect();
    assert_eq!(
        group.get("betas"),
        Some(&Value::Tuple(betas.into_iter().map(Value::Float).collect()))
    );
    let params: Vec<Value> = exp
        .get("params")
        .arr()
        .iter()
        .map(|p| Value::Int(p.i64()))
        .collect();
    assert_eq!(group.get("params"), Some(&Value::List(params)));
    assert_eq!(group.get("amsgrad"), Some(&Value::Bool(false)));

    let state = optimizer.get("state").unwrap().as_dict().unwrap();
    assert_eq!(state.len(), exp.get("state").arr().len());
    for ((param, entry), exp) in state.iter().zip(exp.get("state").arr()) {
        assert_eq!(param, &Value::Int(exp.get("param").i64()));
        for field in ["step", "exp_avg", "exp_avg_sq"] {
            let tensor = entry.get(field).and_then(Value::as_tensor).unwrap();
            check_tensor(tensor, &exp.get(field), field);
        }
    }
    assert_eq!(into_state_dict(value).unwrap(), sd);
}

#[test]
fn dtypes_views_and_shared_storage() {
    let exp = expected();
    let exp = exp.get("dtypes.pt");
    assert!(exp.get("sliced_storage_offset").i64() > 0);
    let value = read(&fixture("dtypes.pt")).unwrap();
    let sd = state_dict(&value).unwrap();
    check_state_dict(&sd, &exp.get("tensors"));

    let get = |key: &str| value.get(key).and_then(Value::as_tensor).unwrap();
    assert_eq!(get("scalar").shape, Vec::<usize>::new());
    assert_eq!(get("scalar").to_f32(), [3.25]);
    assert_eq!(get("empty").shape, [0, 3]);
    assert!(get("empty").data.is_empty());
    assert_eq!(get("transposed").shape, [6, 4]);
    assert_eq!(get("sliced").shape, [2, 3]);
    assert_eq!(get("expanded").to_f32(), [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    assert_eq!(get("shared_b").shape, [2, 3]);
    assert_eq!(
        get("shared_b").data,
        (4..10i32).flat_map(i32::to_le_bytes).collect::<Vec<_>>()
    );
    assert_eq!(get("i64").dtype, DType::I64);
    assert_eq!(get("bool").to_f32(), [1.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
}

#[test]
fn objects_that_are_not_tensors() {
    let value = read(&fixture("misc_objects.pt")).unwrap();
    let get = |key: &str| value.get(key).unwrap_or_else(|| panic!("{key}"));

    let namespace = with_state(
        object("argparse", "Namespace", vec![]),
        Value::Dict(vec![(s("lr"), Value::Float(0.5)), (s("name"), s("unet"))]),
    );
    assert_eq!(get("namespace"), &namespace);

    let Value::Object { class, args, .. } = get("np_scalar") else {
        panic!("numpy scalar: {:?}", get("np_scalar"));
    };
    assert!(class.0.starts_with("numpy") && class.0.ends_with("multiarray"));
    assert_eq!(class.1, "scalar");
    assert_eq!(args[1], Value::Bytes(1.5f32.to_le_bytes().to_vec()));
    let Value::Object {
        class, args, state, ..
    } = &args[0]
    else {
        panic!("numpy dtype");
    };
    assert_eq!(class, &("numpy".to_owned(), "dtype".to_owned()));
    assert_eq!(args[0], s("f4"));
    assert!(state.is_some());

    let Value::Object {
        class,
        args,
        dict_items,
        ..
    } = get("defaultdict")
    else {
        panic!("defaultdict");
    };
    assert_eq!(class, &("collections".to_owned(), "defaultdict".to_owned()));
    assert_eq!(
        args,
        &[Value::Global {
            module: "builtins".into(),
            name: "list".into()
        }]
    );
    assert_eq!(dict_items, &[(s("a"), Value::List(vec![Value::Int(1)]))]);

    let size = object(
        "torch",
        "Size",
        vec![Value::Tuple(vec![Value::Int(2), Value::Int(3)])],
    );
    assert_eq!(get("size"), &size);
    let set = object(
        "builtins",
        "set",
        vec![Value::List(vec![Value::Int(1), Value::Int(2)])],
    );
    assert_eq!(get("set"), &set);
    let frozenset = object(
        "builtins",
        "frozenset",
        vec![Value::List(vec![Value::Int(3)])],
    );
    assert_eq!(get("frozenset"), &frozenset);
    assert_eq!(get("bytes"), &Value::Bytes(vec![0, 0xff, b'a', b'b']));
    assert_eq!(get("empty_bytes"), &Value::Bytes(vec![]));
    assert_eq!(get("param_with_attr"), &f32_tensor(vec![2], &[1.0, 2.0]));
    assert_eq!(get("tensor_with_attr"), &f32_tensor(vec![2], &[4.0, 5.0]));
    let nested = Value::List(vec![
        Value::None,
        Value::Bool(true),
        Value::Bool(false),
        Value::Tuple(vec![Value::Int(1), Value::Float(2.5), s("s")]),
        Value::Dict(vec![(
            s("k"),
            Value::List(vec![Value::Int(1 << 40), Value::Int(-(1 << 40))]),
        )]),
    ]);
    assert_eq!(get("nested"), &nested);
    assert_eq!(get("unicode"), &s("h\u{e9}llo \u{2713}"));
    let dtype = Value::Global {
        module: "torch".into(),
        name: "float32".into(),
    };
    assert_eq!(get("dtype"), &dtype);
    // One list pickled once and referenced twice, filled after it was memoized.
    let same = Value::List(vec![Value::Int(1), s("two")]);
    assert_eq!(get("same_a"), &same);
    assert_eq!(get("same_b"), &same);

    let err = state_dict(&value).unwrap_err();
    let TorchPickleError::NoStateDict { top_kind, keys } = &err else {
        panic!("{err}");
    };
    assert_eq!(*top_kind, "dict");
    assert_eq!(keys[0], "namespace");
    assert!(err.to_string().contains("np_scalar"));
}

#[test]
fn other_pickle_protocols_give_the_same_values() {
    let p2 = read(&fixture("misc_objects.pt")).unwrap();
    // Protocol 4: FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE, SHORT_BINBYTES,
    // EMPTY_SET/ADDITEMS, FROZENSET.
    assert_eq!(read(&fixture("misc_objects_p4.pt")).unwrap(), p2);
    // Protocol 1: INT for booleans, LONG, MARK ... TUPLE; argparse.Namespace goes through
    // copyreg._reconstructor instead of NEWOBJ.
    let p1 = read(&fixture("misc_objects_p1.pt")).unwrap();
    let (Value::Dict(p1), Value::Dict(p2)) = (p1, p2) else {
        panic!("not dicts");
    };
    assert_eq!(p1.len(), p2.len());
    for ((k1, v1), (k2, v2)) in p1.iter().zip(&p2) {
        assert_eq!(k1, k2);
        if k1 == &s("namespace") {
            let Value::Object { class, .. } = v1 else {
                panic!("namespace");
            };
            assert_eq!(class, &("copyreg".to_owned(), "_reconstructor".to_owned()));
        } else {
            assert_eq!(v1, v2, "{k1:?}");
        }
    }
}

#[test]
fn new_dtypes_use_untyped_storage_and_are_reported() {
    let err = read(&fixture("uint16.pt")).unwrap_err();
    assert!(
        matches!(&err, TorchPickleError::UnsupportedDtype { name } if name == "torch.uint16"),
        "{err}"
    );
}

#[test]
fn legacy_format_is_reported() {
    let err = read(&fixture("legacy.pt")).unwrap_err();
    assert!(
        matches!(err, TorchPickleError::LegacyFormat { .. }),
        "{err}"
    );
    assert!(err
        .to_string()
        .contains("_use_new_zipfile_serialization=True"));
}

#[test]
fn truncated_zip_is_reported() {
    let bytes = std::fs::read(fixture("plain_state_dict.pt")).unwrap();
    let file = TempFile::new("half.pt", &bytes[..bytes.len() / 2]);
    let err = read(&file.0).unwrap_err();
    assert!(matches!(err, TorchPickleError::NotZip { .. }), "{err}");
    let file = TempFile::new("empty.pt", b"");
    assert!(matches!(
        read(&file.0),
        Err(TorchPickleError::NotZip { .. })
    ));
    let missing = std::env::temp_dir().join("torchpickle-test-does-not-exist.pt");
    assert!(matches!(read(&missing), Err(TorchPickleError::Io { .. })));
}

#[test]
fn folder_name_and_compression_do_not_matter() {
    let original = read(&fixture("dtypes.pt")).unwrap();
    let entries: Vec<(String, Vec<u8>)> = entries_of("dtypes.pt")
        .into_iter()
        .map(|(name, data)| (name.replacen("dtypes/", "archive/", 1), data))
        .collect();
    let refs: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    for method in [CompressionMethod::Stored, CompressionMethod::Deflated] {
        let file = TempFile::new("renamed.bin", &zip_bytes(&refs, method));
        assert_eq!(read(&file.0).unwrap(), original, "{method:?}");
    }
}

#[test]
fn crc32_is_checked_unless_torch_left_it_out() {
    let exp = expected();
    let value = read(&fixture("no_crc32.pt")).unwrap();
    check_state_dict(
        &state_dict(&value).unwrap(),
        &exp.get("no_crc32.pt").get("tensors"),
    );

    let pickle = tensor_pickle("FloatStorage", "0", 4, 0, &[4], &[1]);
    let data = floats(&[1.0, 2.0, 3.0, 4.0]);
    let mut zip = zip_bytes(
        &[("archive/data.pkl", &pickle), ("archive/data/0", &data)],
        CompressionMethod::Stored,
    );
    let at = zip.windows(data.len()).position(|w| w == data).unwrap();
    zip[at + 5] ^= 1;
    let file = TempFile::new("badcrc.pt", &zip);
    let err = read(&file.0).unwrap_err();
    assert!(
        matches!(&err, TorchPickleError::ZipEntry { entry, .. } if entry == "archive/data/0"),
        "{err}"
    );
}

#[test]
fn unknown_opcode_is_reported() {
    let err = read_zip(
        "opcode.pt",
        &[
            ("archive/data.pkl", b"\x80\x02N\xff."),
            ("archive/byteorder", b"little"),
        ],
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            TorchPickleError::UnsupportedOpcode {
                opcode: 0xff,
                offset: 3
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("0xff"));
    // EXT1 is a real opcode, but the extension registry is not supported.
    let err = unpickle_bare(b"\x80\x02\x82\x01.").unwrap_err();
    assert!(err.to_string().contains("EXT1"), "{err}");
}

#[test]
fn storage_errors_are_reported() {
    let pickle = tensor_pickle("FloatStorage", "0", 4, 0, &[4], &[1]);
    let err = read_zip("nostorage.pt", &[("archive/data.pkl", &pickle)]).unwrap_err();
    assert!(
        matches!(&err, TorchPickleError::MissingStorage { entry } if entry == "archive/data/0"),
        "{err}"
    );

    let short = floats(&[1.0, 2.0]);
    let err = read_zip(
        "short.pt",
        &[("archive/data.pkl", &pickle), ("archive/data/0", &short)],
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            TorchPickleError::TruncatedStorage {
                needed: 16,
                available: 8,
                ..
            }
        ),
        "{err}"
    );

    // A storage that claims 2^40 floats but holds 16 bytes: no huge allocation.
    let huge = tensor_pickle("FloatStorage", "0", 1 << 40, 0, &[4], &[1]);
    let data = floats(&[1.0, 2.0, 3.0, 4.0]);
    let err = read_zip(
        "huge.pt",
        &[("archive/data.pkl", &huge), ("archive/data/0", &data)],
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            TorchPickleError::TruncatedStorage { available: 16, .. }
        ),
        "{err}"
    );

    let ok = read_zip(
        "ok.pt",
        &[("archive/data.pkl", &pickle), ("archive/data/0", &data)],
    )
    .unwrap();
    assert_eq!(
        ok.get("w"),
        Some(&f32_tensor(vec![4], &[1.0, 2.0, 3.0, 4.0]))
    );

    let complex = tensor_pickle("ComplexFloatStorage", "0", 2, 0, &[2], &[1]);
    let err = read_zip(
        "complex.pt",
        &[("archive/data.pkl", &complex), ("archive/data/0", &data)],
    )
    .unwrap_err();
    assert!(
        matches!(&err, TorchPickleError::UnsupportedDtype { name } if name == "torch.ComplexFloatStorage"),
        "{err}"
    );
}

#[test]
fn each_storage_is_read_once() {
    let whole = tensor_expr("FloatStorage", "0", 4, 0, &[4], &[1]);
    let pickle = dict_pickle(&[
        ("a", [&whole[..], b"q\x00"].concat()),
        ("alias", b"h\x00".to_vec()),
        ("tied", whole),
        ("tail", tensor_expr("FloatStorage", "0", 4, 2, &[2], &[1])),
        ("raw", storage_expr("FloatStorage", "0", 4)),
        ("quantized", storage_expr("QInt8Storage", "1", 2)),
    ]);
    let data = floats(&[1.0, 2.0, 3.0, 4.0]);
    let zip = zip_bytes(
        &[("archive/data.pkl", &pickle), ("archive/data/0", &data)],
        CompressionMethod::Stored,
    );
    let mut storages = ZipStorages {
        archive: ZipArchive::new(Cursor::new(zip)).unwrap(),
        folder: "archive".into(),
        file_len: 1 << 20,
        cache: HashMap::new(),
        loaded: 0,
    };
    let value = unpickle(&pickle, &mut storages).unwrap();
    assert_eq!(storages.loaded, 16);
    assert!(storages.cache.is_empty());
    let all = f32_tensor(vec![4], &[1.0, 2.0, 3.0, 4.0]);
    for key in ["a", "alias", "tied", "raw"] {
        assert_eq!(value.get(key), Some(&all), "{key}");
    }
    assert_eq!(value.get("tail"), Some(&f32_tensor(vec![2], &[3.0, 4.0])));
    let quantized = object(
        "torch",
        "QInt8Storage",
        vec![s("1"), s("cpu"), Value::Int(2)],
    );
    assert_eq!(value.get("quantized"), Some(&quantized));
}

#[test]
fn hostile_views_are_rejected() {
    let data = floats(&[1.0, 2.0, 3.0, 4.0]);
    let cases: [(&[i64], &[i64], i64); 4] = [
        (&[5], &[1], 0),                   // beyond the storage
        (&[2], &[1], 3),                   // offset pushes it beyond
        (&[2, 2], &[1], 0),                // sizes and strides disagree
        (&[1 << 30, 1 << 30], &[0, 0], 0), // 2^60 elements from one float
    ];
    for (shape, stride, offset) in cases {
        let pickle = tensor_pickle("FloatStorage", "0", 4, offset, shape, stride);
        let err = read_zip(
            "view.pt",
            &[("archive/data.pkl", &pickle), ("archive/data/0", &data)],
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                TorchPickleError::Malformed { .. } | TorchPickleError::LimitExceeded { .. }
            ),
            "{shape:?} {stride:?}: {err}"
        );
    }
    // A large but legal expansion still works.
    let pickle = tensor_pickle("FloatStorage", "0", 4, 1, &[3, 2], &[0, 2]);
    let value = read_zip(
        "expand.pt",
        &[("archive/data.pkl", &pickle), ("archive/data/0", &data)],
    )
    .unwrap();
    assert_eq!(
        value.get("w"),
        Some(&f32_tensor(vec![3, 2], &[2.0, 4.0, 2.0, 4.0, 2.0, 4.0]))
    );
}

#[test]
fn archive_layout_errors_are_reported() {
    let err = read_zip("nopkl.pt", &[("archive/data/0", b"x")]).unwrap_err();
    assert!(
        matches!(err, TorchPickleError::MissingDataPkl { .. }),
        "{err}"
    );

    let err = read_zip(
        "two.pt",
        &[("a/data.pkl", b"\x80\x02N."), ("b/data.pkl", b"\x80\x02N.")],
    )
    .unwrap_err();
    assert!(
        matches!(err, TorchPickleError::AmbiguousArchive { .. }),
        "{err}"
    );

    let err = read_zip(
        "big.pt",
        &[
            ("archive/data.pkl", b"\x80\x02N."),
            ("archive/byteorder", b"big"),
        ],
    )
    .unwrap_err();
    assert!(
        matches!(&err, TorchPickleError::BigEndian { found } if found == "big"),
        "{err}"
    );

    // No byteorder entry (older writers): little-endian is assumed.
    let value = read_zip("noorder.pt", &[("my model/data.pkl", b"\x80\x02K\x05.")]).unwrap();
    assert_eq!(value, Value::Int(5));
}

#[test]
fn a_checkpoint_calling_a_foreign_global_is_refused_with_the_global_named() {
    // `posix.system("touch pwned")` at the top level, as a hostile checkpoint would do.
    let mut call = b"\x80\x02".to_vec();
    call.extend(p_global("posix", "system"));
    call.extend(b"(");
    call.extend(p_str("touch pwned"));
    call.extend(b"tR.");
    let value = read_zip("hostile.pt", &[("archive/data.pkl", &call)]).unwrap();
    let err = state_dict(&value).unwrap_err();
    let TorchPickleError::RefusedGlobals { globals } = &err else {
        panic!("{err}");
    };
    assert_eq!(globals, &["posix.system".to_owned()]);
    assert!(err
        .to_string()
        .contains("calls posix.system, which Segno does not run"));
    assert!(into_state_dict(value).is_err());

    // The same call hidden under the key a state dict is looked for, next to a tensor.
    let mut nested = p_global("builtins", "eval");
    nested.extend(b"(");
    nested.extend(p_str("__import__('os').system('id')"));
    nested.extend(b"tR");
    let pickle = dict_pickle(&[
        ("model", nested),
        ("w", tensor_expr("FloatStorage", "0", 1, 0, &[1], &[1])),
    ]);
    let value = read_zip(
        "hidden.pt",
        &[
            ("archive/data.pkl", &pickle),
            ("archive/data/0", &1.0f32.to_le_bytes()),
        ],
    )
    .unwrap();
    let err = state_dict(&value).unwrap_err();
    assert!(
        matches!(&err, TorchPickleError::RefusedGlobals { globals } if globals == &["builtins.eval".to_owned()]),
        "{err}"
    );
    assert!(!Path::new("pwned").exists());
}

#[test]
fn state_dict_lookup() {
    let t = f32_tensor(vec![1], &[1.0]);
    let sd = Value::Dict(vec![(s("w"), t.clone())]);
    let nested = Value::Dict(vec![
        (s("epoch"), Value::Int(1)),
        (s("state_dict"), sd.clone()),
    ]);
    assert_eq!(state_dict(&nested).unwrap()[0].0, "w");
    assert_eq!(into_state_dict(nested).unwrap()[0].1.to_f32(), [1.0]);
    let err = state_dict(&Value::List(vec![])).unwrap_err();
    assert!(matches!(
        err,
        TorchPickleError::NoStateDict {
            top_kind: "list",
            ..
        }
    ));
    let mixed = Value::Dict(vec![(s("w"), t), (s("n"), Value::Int(1))]);
    let err = state_dict(&mixed).unwrap_err();
    let TorchPickleError::NoStateDict { keys, .. } = err else {
        panic!("{err}");
    };
    assert_eq!(keys, ["w", "n"]);
}

// ---- opcodes torch.save does not emit ----

#[test]
fn protocol_0_text_opcodes() {
    // pickle.dumps({'a': [1, -2.5, 'x\u20ac\n\\u', None, True, False],
    //   'b': (7, 2**40, -3), 'c': b'\x00ab', 'd': OrderedDict([('k', 1)]), 'e': {4},
    //   'f': ()}, protocol=0)
    let pickle = b"(dp0\nVa\np1\n(lp2\nI1\naF-2.5\naVx\\u20ac\\u000a\\u005cu\np3\naNaI01\naI00\nasVb\np4\n(I7\nL1099511627776L\nI-3\ntp5\nsVc\np6\nc_codecs\nencode\np7\n(V\\u0000ab\np8\nVlatin1\np9\ntp10\nRp11\nsVd\np12\nccollections\nOrderedDict\np13\n(tRp14\nVk\np15\nI1\nssVe\np16\nc__builtin__\nset\np17\n((lp18\nI4\natp19\nRp20\nsVf\np21\n(ts.";
    let value = unpickle_bare(pickle).unwrap();
    let want = Value::Dict(vec![
        (
            s("a"),
            Value::List(vec![
                Value::Int(1),
                Value::Float(-2.5),
                s("x\u{20ac}\n\\u"),
                Value::None,
                Value::Bool(true),
                Value::Bool(false),
            ]),
        ),
        (
            s("b"),
            Value::Tuple(vec![Value::Int(7), Value::Int(1 << 40), Value::Int(-3)]),
        ),
        (s("c"), Value::Bytes(b"\x00ab".to_vec())),
        (s("d"), Value::Dict(vec![(s("k"), Value::Int(1))])),
        (
            s("e"),
            object("builtins", "set", vec![Value::List(vec![Value::Int(4)])]),
        ),
        (s("f"), Value::Tuple(vec![])),
    ]);
    assert_eq!(value, want);
}

#[test]
fn rarely_used_opcodes() {
    let pickle = [
        &b"\x80\x04("[..],
        b"S'a\\'b\\x41\\n\\101'\n",                  // STRING with escapes
        b"U\x02hi",                                  // SHORT_BINSTRING
        b"T\x03\x00\x00\x00\xff\xfe\x00",            // BINSTRING, not UTF-8
        b"\x8d\x02\x00\x00\x00\x00\x00\x00\x00ok",   // BINUNICODE8
        b"\x8e\x01\x00\x00\x00\x00\x00\x00\x00\x07", // BINBYTES8
        b"\x96\x01\x00\x00\x00\x00\x00\x00\x00\x08\x98", // BYTEARRAY8, READONLY_BUFFER
        b"B\x02\x00\x00\x00zz",                      // BINBYTES
        b"\x8b\x09\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00", // LONG4 1
        b"\x8a\x00",                                 // LONG1 0
        b"\x8a\x08\xff\xff\xff\xff\xff\xff\xff\xff", // LONG1 -1
        b"\x8a\x02\x00\x80",                         // LONG1 -32768
        b"M\xff\xff",                                // BININT2
        b"J\xff\xff\xff\xff",                        // BININT -1
        b"F1e3\n",                                   // FLOAT
        b"G\x3f\xe0\x00\x00\x00\x00\x00\x00",        // BINFLOAT 0.5
        b"N20",                                      // NONE DUP POP
        b"(K\x011",                                  // MARK BININT1 POP_MARK
        b"]\x94(K\x01K\x02e",                        // EMPTY_LIST MEMOIZE MARK .. APPENDS
        b"h\x00",                                    // BINGET
        b"(K\x05l",                                  // LIST
        b"(K\x01K\x02d",                             // DICT
        b"\x8f(K\x03\x90",                           // EMPTY_SET ADDITEMS
        b"(K\x04\x91",                               // FROZENSET
        b"\x8c\x05torch\x8c\x07float32\x93",         // STACK_GLOBAL
        b"g0\np7\nj\x07\x00\x00\x00r\x08\x00\x00\x000", // GET PUT LONG_BINGET LONG_BINPUT POP
        b"c__builtin__\nbytearray\n(B\x02\x00\x00\x00hitR", // bytearray(b'hi')
        b"cargparse\nNamespace\n)}(Vx\nK\x01u\x92",  // NEWOBJ_EX with kwargs
        b"(K\x01imod\nname\n",                       // INST
        b"(cmod\nC\nK\x02o",                         // OBJ
        b"K\x01K\x02K\x03)\x85\x86\x87",             // TUPLE1/2/3
        b"t.",
    ]
    .concat();
    let value = unpickle_bare(&pickle).unwrap();
    let list12 = Value::List(vec![Value::Int(1), Value::Int(2)]);
    let want = Value::Tuple(vec![
        s("a'bA\nA"),
        s("hi"),
        Value::Bytes(vec![0xff, 0xfe, 0x00]),
        s("ok"),
        Value::Bytes(vec![7]),
        Value::Bytes(vec![8]),
        Value::Bytes(b"zz".to_vec()),
        Value::Int(1),
        Value::Int(0),
        Value::Int(-1),
        Value::Int(-32768),
        Value::Int(65535),
        Value::Int(-1),
        Value::Float(1000.0),
        Value::Float(0.5),
        Value::None,
        list12.clone(),
        list12.clone(),
        Value::List(vec![Value::Int(5)]),
        Value::Dict(vec![(Value::Int(1), Value::Int(2))]),
        object("builtins", "set", vec![Value::List(vec![Value::Int(3)])]),
        object(
            "builtins",
            "frozenset",
            vec![Value::List(vec![Value::Int(4)])],
        ),
        Value::Global {
            module: "torch".into(),
            name: "float32".into(),
        },
        list12,
        Value::Bytes(b"hi".to_vec()),
        object(
            "argparse",
            "Namespace",
            vec![Value::Dict(vec![(s("x"), Value::Int(1))])],
        ),
        object("mod", "name", vec![Value::Int(1)]),
        object("mod", "C", vec![Value::Int(2)]),
        Value::Tuple(vec![
            Value::Int(1),
            Value::Int(2),
            Value::Tuple(vec![
                Value::Int(3),
                Value::Tuple(vec![Value::Tuple(vec![])]),
            ]),
        ]),
    ]);
    assert_eq!(value, want);
}

#[test]
fn malformed_pickles_are_errors() {
    let underflow = unpickle_bare(b"\x80\x02a.").unwrap_err();
    assert!(
        matches!(
            underflow,
            TorchPickleError::StackUnderflow {
                opcode: "APPEND",
                offset: 2
            }
        ),
        "{underflow}"
    );
    // A value below the MARK cannot be popped.
    assert!(matches!(
        unpickle_bare(b"\x80\x02N(\x85."),
        Err(TorchPickleError::StackUnderflow { .. })
    ));
    let too_large = b"\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.";
    assert!(matches!(
        unpickle_bare(too_large),
        Err(TorchPickleError::IntegerTooLarge { offset: 2 })
    ));
    assert!(matches!(
        unpickle_bare(b"L123456789012345678901234567890L\n."),
        Err(TorchPickleError::IntegerTooLarge { offset: 0 })
    ));
    for bad in [
        &b"\x80\x02h\x05."[..],                // unknown memo key
        b"\x80\x02N",                          // no STOP
        b"\x80\x02X\xff\xff\xff\x7f",          // string longer than the pickle
        b"\x80\x02NK\x01K\x02s.",              // SETITEM on None
        b"\x80\x02e.",                         // APPENDS without MARK
        b"\x80\x02(K\x01d.",                   // DICT with an odd count
        b"\x80\x02N)R.",                       // calling None
        b"\x80\x02I12x\n.",                    // bad INT literal
        b"\x80\x02X\x02\x00\x00\x00\xff\xfe.", // BINUNICODE not UTF-8
        b"\x80\x06N.",                         // protocol 6
        b"\x80\x02P0\n.",                      // text persistent id
    ] {
        let err = unpickle_bare(bad).unwrap_err();
        assert!(
            matches!(err, TorchPickleError::Malformed { .. }),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn hostile_structures_hit_limits_not_the_stack() {
    // A list that contains itself.
    let cycle = unpickle_bare(b"\x80\x02]q\x00h\x00a.");
    assert!(matches!(cycle, Err(TorchPickleError::LimitExceeded { .. })));
    // 100000 nested tuples.
    let deep = [&b"\x80\x02)"[..], &[0x85; 100_000], b"."].concat();
    assert!(matches!(
        unpickle_bare(&deep),
        Err(TorchPickleError::LimitExceeded { .. })
    ));
    // 2^60 references built by doubling.
    let laughs = [&b"\x80\x02N"[..], &b"2\x86".repeat(60), b"."].concat();
    assert!(matches!(
        unpickle_bare(&laughs),
        Err(TorchPickleError::LimitExceeded { .. })
    ));
    // Moderate sharing is expanded into copies.
    let shared = [&b"\x80\x02N"[..], &b"2\x86".repeat(4), b"."].concat();
    let Value::Tuple(items) = unpickle_bare(&shared).unwrap() else {
        panic!("tuple");
    };
    assert_eq!(items.len(), 2);
    assert_eq!(items[0], items[1]);
}

#[test]
fn damaged_pickles_never_panic() {
    // TORCHPICKLE_FUZZ=<n> runs n damaged copies of each fixture instead of 1000.
    let iterations: usize = std::env::var("TORCHPICKLE_FUZZ")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut damage = |bytes: &mut [u8]| {
        for _ in 0..1 + next() % 4 {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = next() as u8;
        }
    };
    for name in ["dacapo_checkpoint.pt", "dtypes.pt", "misc_objects_p4.pt"] {
        let file = std::fs::read(fixture(name)).unwrap();
        let folder = name.trim_end_matches(".pt");
        let mut storages = ZipStorages {
            archive: ZipArchive::new(Cursor::new(file.clone())).unwrap(),
            folder: folder.into(),
            file_len: file.len() as u64,
            cache: HashMap::new(),
            loaded: 0,
        };
        let entries = entries_of(name);
        let pickle = &entries
            .iter()
            .find(|(entry, _)| entry.ends_with("/data.pkl"))
            .unwrap()
            .1;
        assert!(unpickle(pickle, &mut storages).is_ok());
        for len in 0..pickle.len() {
            assert!(unpickle(&pickle[..len], &mut storages).is_err());
        }
        for _ in 0..iterations {
            let mut damaged = pickle.clone();
            damage(&mut damaged);
            let _ = unpickle(&damaged, &mut storages);
        }
        // Damage anywhere in the archive, storages and zip structures included.
        for _ in 0..iterations / 4 {
            let mut damaged = file.clone();
            damage(&mut damaged);
            let len = damaged.len() as u64;
            if let Ok(archive) = ZipArchive::new(Cursor::new(damaged)) {
                let _ = read_archive(archive, len);
            }
        }
    }
}

#[test]
fn conversions_to_f32() {
    let t = |dtype, data: Vec<u8>| TensorData {
        dtype,
        shape: vec![data.len() / DType::size_in_bytes(dtype)],
        data,
    };
    let f16: Vec<u8> = [1.5f32, -0.25]
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
        .collect();
    assert_eq!(t(DType::F16, f16).to_f32(), [1.5, -0.25]);
    let bf16: Vec<u8> = [3.0f32, -1.0]
        .iter()
        .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
        .collect();
    assert_eq!(t(DType::BF16, bf16).to_f32(), [3.0, -1.0]);
    assert_eq!(t(DType::F64, 0.5f64.to_le_bytes().to_vec()).to_f32(), [0.5]);
    assert_eq!(t(DType::U8, vec![0, 255]).to_f32(), [0.0, 255.0]);
    assert_eq!(t(DType::I8, vec![0x80]).to_f32(), [-128.0]);
    assert_eq!(
        t(DType::I16, (-300i16).to_le_bytes().to_vec()).to_f32(),
        [-300.0]
    );
    assert_eq!(
        t(DType::I32, (-7i32).to_le_bytes().to_vec()).to_f32(),
        [-7.0]
    );
    assert_eq!(
        t(DType::I64, (1i64 << 40).to_le_bytes().to_vec()).to_f32(),
        [1099511627776.0]
    );
    assert_eq!(t(DType::Bool, vec![0, 1, 2]).to_f32(), [0.0, 1.0, 1.0]);
    let scalar = TensorData {
        dtype: DType::F32,
        shape: vec![],
        data: 2.0f32.to_le_bytes().to_vec(),
    };
    assert_eq!(scalar.numel(), 1);
}
