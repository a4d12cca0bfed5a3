//! `segno config …`: list, show, validate, import, export and describe configs. The work
//! is `ops::configs`; this file prints its reports and the config type catalogue.

use super::*;

pub(super) fn config(cmd: ConfigCommand, out: &mut dyn Write) -> Result<u8, Failure> {
    use crate::ops::configs;
    match cmd {
        ConfigCommand::List { family, project } => {
            let families = family.as_deref().map(parse_family).transpose()?;
            let listing = configs::list_configs(&project.open()?, families.as_slice())?;
            print(out, &listing, project.json)
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
        } => {
            let family = family.as_deref().map(parse_family).transpose()?;
            let reports = configs::check_configs(&project.open()?, &files, family)?;
            finish(reports, project.json, out)
        }
        ConfigCommand::Import {
            paths,
            family,
            project,
        } => {
            let family = family.as_deref().map(parse_family).transpose()?;
            let reports = configs::import_configs(&project.open()?, &paths, family)?;
            finish(reports, project.json, out)
        }
        ConfigCommand::Describe { what, json } => describe(what.as_deref(), json, out),
        ConfigCommand::Export {
            family,
            name,
            output,
            force,
            project,
        } => {
            let format = if project.json {
                configs::ConfigFormat::Json
            } else {
                configs::ConfigFormat::Yaml
            };
            let report = configs::export_config(
                &project.open()?,
                parse_family(&family)?,
                &name,
                format,
                output.as_deref(),
                force,
            )?;
            match &report.written {
                None => emit(out, &report.text)?,
                Some(path) => eprintln!("wrote {} {:?} to {}", report.family, name, path.display()),
            }
            Ok(exit::OK)
        }
    }
}

/// Prints the per-document reports of `config validate` and `config import`; the most
/// severe failure decides the exit code (I/O over conflicts over invalid).
pub(super) fn finish(
    reports: Vec<crate::ops::configs::DocumentReport>,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, Failure> {
    let documents: Vec<Document> = reports.into_iter().map(Document::from).collect();
    if json {
        emit_json(
            out,
            &Value::Array(documents.iter().map(Document::to_json).collect()),
        )?;
    } else {
        let text: String = documents.iter().map(Document::to_text).collect();
        emit(out, &text)?;
        let failed = documents.iter().filter(|r| r.outcome.is_err()).count();
        emit(
            out,
            &format!("{} ok, {failed} with errors\n", documents.len() - failed),
        )?;
    }
    Ok(documents
        .iter()
        .filter_map(|r| r.outcome.as_ref().err().map(|f| f.code))
        .max()
        .unwrap_or(exit::OK))
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
