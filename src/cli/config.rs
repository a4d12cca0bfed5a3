//! `segno config …`: list, show, validate, import, export and describe configs.

use super::*;

pub(super) fn config(cmd: ConfigCommand, out: &mut dyn Write) -> Result<u8, Failure> {
    match cmd {
        ConfigCommand::List { family, project } => {
            let families = match family {
                Some(f) => vec![parse_family(&f)?],
                None => Family::ALL.to_vec(),
            };
            let project_dir = project.open()?;
            let store = project_dir.configs();
            let mut listing = Vec::new();
            for f in families {
                listing.push((f, store.names(f)?));
            }
            if project.json {
                let map: serde_json::Map<String, Value> = listing
                    .iter()
                    .map(|(f, names)| (f.dir_name().to_string(), json!(names)))
                    .collect();
                emit_json(out, &Value::Object(map))?;
            } else {
                let mut text = format!("project: {}\n", project_dir.root().display());
                for (f, names) in &listing {
                    text.push_str(&format!("{} ({}):\n", f.dir_name(), names.len()));
                    for n in names {
                        text.push_str(&format!("  {n}\n"));
                    }
                }
                emit(out, &text)?;
            }
            Ok(exit::OK)
        }
        ConfigCommand::Show {
            family,
            name,
            project,
        } => {
            let (_, config) = retrieve(&project, &family, &name)?;
            if project.json {
                emit_json(out, &config.to_document())?;
            } else {
                emit(out, &config.to_yaml())?;
            }
            Ok(exit::OK)
        }
        ConfigCommand::Validate {
            files,
            family,
            project,
        } => validate(files, family, &project, out),
        ConfigCommand::Import {
            paths,
            family,
            project,
        } => import(paths, family, &project, out),
        ConfigCommand::Describe { what, json } => describe(what.as_deref(), json, out),
        ConfigCommand::Export {
            family,
            name,
            output,
            force,
            project,
        } => {
            let (family, config) = retrieve(&project, &family, &name)?;
            let text = if project.json {
                serde_json::to_string_pretty(&config.to_document())
                    .map(|t| t + "\n")
                    .map_err(|e| Failure::new(exit::IO, format!("cannot encode JSON: {e}")))?
            } else {
                config.to_yaml()
            };
            match output {
                None => emit(out, &text)?,
                Some(path) => {
                    if path.exists() && !force {
                        return Err(Failure::new(
                            exit::CONFLICT,
                            format!("{} exists; pass --force to replace it", path.display()),
                        ));
                    }
                    crate::store::atomic::write_atomic(&path, text.as_bytes(), true)?;
                    eprintln!("wrote {} {:?} to {}", family.noun(), name, path.display());
                }
            }
            Ok(exit::OK)
        }
    }
}

/// One checked or imported document, for reports.
pub(super) struct Report {
    source: String,
    family: Option<Family>,
    name: Option<String>,
    outcome: Result<String, Failure>,
    /// Settings that are accepted but have no effect, and types Segno will not compute with.
    warnings: Vec<String>,
}

impl Report {
    fn to_json(&self) -> Value {
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

    fn to_text(&self) -> String {
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

pub(super) fn finish(reports: &[Report], json: bool, out: &mut dyn Write) -> Result<u8, Failure> {
    if json {
        emit_json(
            out,
            &Value::Array(reports.iter().map(Report::to_json).collect()),
        )?;
    } else {
        let text: String = reports.iter().map(Report::to_text).collect();
        emit(out, &text)?;
        let failed = reports.iter().filter(|r| r.outcome.is_err()).count();
        emit(
            out,
            &format!("{} ok, {failed} with errors\n", reports.len() - failed),
        )?;
    }
    // The most severe failure decides the exit code (I/O over conflicts over invalid).
    Ok(reports
        .iter()
        .filter_map(|r| r.outcome.as_ref().err().map(|f| f.code))
        .max()
        .unwrap_or(exit::OK))
}

pub(super) fn load_file(
    path: &Path,
    family: Option<Family>,
) -> (Option<Family>, Result<AnyConfig, Failure>) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return (
                family,
                Err(Failure::new(
                    exit::IO,
                    format!("cannot read {}: {e}", path.display()),
                )),
            )
        }
    };
    let source = path.display().to_string();
    match AnyConfig::from_text(family, &text, &source) {
        Ok(c) => (Some(c.family()), Ok(c)),
        Err(e) => (family, Err(e.into())),
    }
}

/// Checks `path` as a DaCapo options file (`dacapo.yaml`) if it looks like one.
pub(super) fn check_options_file(path: &Path) -> Option<Report> {
    let text = std::fs::read_to_string(path).ok()?;
    let source = path.display().to_string();
    let doc = crate::config::parse_document(&text, &source).ok()?;
    let map = doc.as_object()?;
    let looks_like_options = !map.contains_key(crate::config::TYPE_KEY)
        && (map.contains_key("runs_base_dir") || map.contains_key("compute_context"));
    if !looks_like_options {
        return None;
    }
    let outcome = crate::config::decode_document::<crate::config::OptionsConfig>(&doc, &source)
        .map(|_| "valid options file".to_string())
        .map_err(Failure::from);
    Some(Report {
        source,
        family: None,
        name: None,
        outcome,
        warnings: crate::config::compatibility_warnings(&doc),
    })
}

pub(super) fn validate(
    files: Vec<PathBuf>,
    family: Option<String>,
    project: &ProjectArgs,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let family = family.as_deref().map(parse_family).transpose()?;
    let mut reports = Vec::new();
    let store = project.open()?.configs();
    // The config's own problems, then (for a valid config) what its file name and the
    // files and arrays it names in the project say; warnings go with either.
    let check = |path: &Path, config: &AnyConfig| -> (Result<String, Failure>, Vec<String>) {
        let mut problems = config.problems();
        // The same name rules as import (a name must work as a file name everywhere).
        if let Err(e) = crate::store::configs::validate_name(config.family(), config.name()) {
            problems.push("name", e.to_string());
        }
        let mut warnings = crate::config::compatibility_warnings(&config.to_document());
        if problems.is_empty() {
            let project_check = store.check_file(path, config);
            problems = project_check.problems;
            warnings = project_check.warnings;
        }
        let outcome = if problems.is_empty() {
            Ok("valid".to_string())
        } else {
            Err(Failure::new(
                exit::INVALID,
                format!("{} problem(s):\n{problems}", problems.len()),
            ))
        };
        (outcome, warnings)
    };
    if files.is_empty() {
        let families = family.map_or(Family::ALL.to_vec(), |f| vec![f]);
        for f in families {
            for name in store.names(f)? {
                let path = store.path_of(f, &name);
                let (outcome, warnings) = match store.retrieve(f, &name) {
                    Ok(c) => check(&path, &c),
                    Err(e) => (Err(Failure::from(e)), Vec::new()),
                };
                reports.push(Report {
                    source: path.display().to_string(),
                    family: Some(f),
                    name: Some(name),
                    outcome,
                    warnings,
                });
            }
        }
    } else {
        for path in files {
            if family.is_none() {
                if let Some(report) = check_options_file(&path) {
                    reports.push(report);
                    continue;
                }
            }
            let (fam, loaded) = load_file(&path, family);
            let name = loaded.as_ref().ok().map(|c| c.name().to_string());
            let (outcome, warnings) = match loaded {
                Ok(c) => check(&path, &c),
                Err(e) => (Err(e), Vec::new()),
            };
            reports.push(Report {
                source: path.display().to_string(),
                family: fam,
                name,
                outcome,
                warnings,
            });
        }
    }
    finish(&reports, project.json, out)
}

pub(super) fn import(
    paths: Vec<PathBuf>,
    family: Option<String>,
    project: &ProjectArgs,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let family = family.as_deref().map(parse_family).transpose()?;
    let mut files = Vec::new();
    for p in &paths {
        files.extend(crate::store::config_files(p)?);
    }
    let store = project.open()?.configs();
    let mut reports = Vec::new();
    for (path, implied) in files {
        let imported = store.import_file(&path, family.or(implied));
        reports.push(Report {
            source: path.display().to_string(),
            family: imported.family,
            name: imported.name,
            warnings: imported.warnings,
            outcome: imported
                .outcome
                .map(|o| match o {
                    StoreOutcome::Written => "stored".to_string(),
                    StoreOutcome::Unchanged => "already stored (identical)".to_string(),
                })
                .map_err(Failure::from),
        });
    }
    finish(&reports, project.json, out)
}

pub(super) fn field_json(f: &crate::config::FieldInfo) -> Value {
    json!({
        "key": f.key,
        "aliases": f.aliases,
        "required": f.required(),
        "default": f.default.map(|d| d()),
        "expected": (f.expected)(),
        "choices": f.choices,
        "help": f.help(),
        "no_effect": f.no_effect,
    })
}

/// A group and its types, one line each with the first sentence of the type's help.
pub(super) fn group_text(group: &crate::config::TypeGroup) -> String {
    let mut text = format!("{} — {}\n", group.name, group.help);
    for t in group.types {
        let help = t.help();
        let first = help.split(". ").next().unwrap_or("").trim_end_matches('.');
        text.push_str(&format!("  {:<34} {first}\n", t.tag));
    }
    text
}

pub(super) fn describe(what: Option<&str>, json: bool, out: &mut dyn Write) -> Result<u8, Failure> {
    let groups = crate::config::catalogue();
    match what {
        None => {
            if json {
                let v: Vec<Value> = groups
                    .iter()
                    .map(|g| json!({"group": g.name, "help": g.help, "types": g.types.iter().map(|t| t.tag).collect::<Vec<_>>()}))
                    .collect();
                return emit_json(out, &Value::Array(v)).map(|()| exit::OK);
            }
            let text: String = groups.iter().map(group_text).collect();
            emit(out, &text)?;
        }
        Some(name) => {
            if let Some(g) = groups.iter().find(|g| g.name.eq_ignore_ascii_case(name)) {
                if json {
                    let v: Vec<Value> = g
                        .types
                        .iter()
                        .map(|t| json!({"type": t.tag, "help": t.help()}))
                        .collect();
                    return emit_json(out, &Value::Array(v)).map(|()| exit::OK);
                }
                let text = group_text(g);
                return emit(out, &text).map(|()| exit::OK);
            }
            let Some((group, t)) = crate::config::find_type(name) else {
                let all = groups
                    .iter()
                    .flat_map(|g| g.types.iter().map(|t| t.tag).chain([g.name]));
                let hint = crate::config::schema::closest(name, all)
                    .map(|b| format!(" (did you mean {b}?)"))
                    .unwrap_or_default();
                return Err(Failure::new(
                    exit::NOT_FOUND,
                    format!("no config type or group named {name:?}{hint}; run `segno config describe` for the list"),
                ));
            };
            if json {
                let v = json!({
                    "type": t.tag,
                    "group": group.name,
                    "help": t.help(),
                    "refused": t.refused,
                    "fields": t.fields.iter().map(field_json).collect::<Vec<_>>(),
                });
                return emit_json(out, &v).map(|()| exit::OK);
            }
            let mut text = format!("{} ({})\n  {}\n", t.tag, group.name, t.help());
            if let Some(why) = t.refused {
                text.push_str(&format!(
                    "  Accepted for compatibility; Segno does not compute with it: {why}.\n"
                ));
            }
            text.push('\n');
            for f in t.fields {
                let key = if f.aliases.is_empty() {
                    f.key.to_string()
                } else {
                    format!("{} (also {})", f.key, f.aliases.join(", "))
                };
                let default = match f.default {
                    None => "required".to_string(),
                    Some(d) => format!(
                        "default {}",
                        crate::config::to_yaml(&d()).trim_end().replace('\n', " ")
                    ),
                };
                let expected = if f.choices.is_empty() {
                    (f.expected)()
                } else {
                    format!("one of {}", f.choices.join(", "))
                };
                text.push_str(&format!(
                    "  {key}: {expected} — {default}\n      {}\n",
                    f.help()
                ));
                if let Some(why) = f.no_effect {
                    text.push_str(&format!(
                        "      No effect in Segno (accepted for compatibility): {why}.\n"
                    ));
                }
            }
            emit(out, &text)?;
        }
    }
    Ok(exit::OK)
}
