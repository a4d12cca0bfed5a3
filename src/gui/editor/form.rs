//! Forms built from a config type's shape: one widget per field (numbers, text, choices,
//! lists, nested configs and coordinates), with each field's problems under it.

use super::*;

/// Draws widgets for a document following its shape; collects edits in place.
pub(super) struct Form<'a> {
    pub(super) problems: &'a [Problem],
    pub(super) texts: &'a mut HashMap<String, String>,
}

impl Form<'_> {
    /// The problems found exactly at `path`.
    fn at(&self, path: &str) -> Vec<&Problem> {
        self.problems.iter().filter(|p| p.path == path).collect()
    }

    /// How many problems are at or below `path`.
    fn below(&self, path: &str) -> usize {
        self.problems
            .iter()
            .filter(|p| {
                path.is_empty()
                    || p.path == path
                    || p.path.starts_with(&format!("{path}."))
                    || p.path.starts_with(&format!("{path}["))
            })
            .count()
    }

    fn show_problems(&self, ui: &mut egui::Ui, path: &str) {
        for p in self.at(path) {
            ui.colored_label(problem_color(ui), &p.message);
        }
    }

    /// The document root: a union gets its type selector, a struct its fields.
    pub(super) fn root(&mut self, ui: &mut egui::Ui, shape: &Shape, value: &mut Value) -> bool {
        match shape {
            Shape::Union { types, .. } => self.union(ui, types, value, "", "type"),
            Shape::Struct { fields, .. } => self.fields(ui, fields, value, ""),
            other => self.value(ui, other, value, "", "value", ""),
        }
    }

    /// A struct's fields, one row or block each, with help on hover and problems below.
    fn fields(
        &mut self,
        ui: &mut egui::Ui,
        fields: &[FieldInfo],
        value: &mut Value,
        path: &str,
    ) -> bool {
        if !value.is_object() {
            *value = schema::struct_skeleton(fields);
            return true;
        }
        let mut changed = false;
        for f in fields {
            let fpath = schema::child(path, f.key);
            let shape = (f.shape)();
            let help = f.help();
            let Some(map) = value.as_object_mut() else {
                break;
            };
            let slot = map
                .entry(f.key.to_string())
                .or_insert_with(|| match f.default {
                    Some(d) => d(),
                    None => shape.skeleton(),
                });
            let label = if f.required() {
                format!("{} *", f.key)
            } else {
                f.key.to_string()
            };
            if f.choices.is_empty() {
                changed |= self.value(ui, &shape, slot, &fpath, &label, &help);
            } else {
                let optional = matches!(shape, Shape::Optional(_));
                changed |= self.choice(ui, f.choices, optional, slot, &fpath, (&label, &help));
            }
        }
        // Keys the type does not know (the problems name them).
        if let Some(map) = value.as_object() {
            let known: Vec<&str> = fields.iter().map(|f| f.key).chain([TYPE_KEY]).collect();
            for k in map.keys().filter(|k| !known.contains(&k.as_str())) {
                ui.colored_label(problem_color(ui), format!("unknown field {k:?}"));
            }
        }
        changed
    }

    /// A text field with a fixed set of values: a list to choose from (with "none" for
    /// optional fields).
    fn choice(
        &mut self,
        ui: &mut egui::Ui,
        choices: &[&str],
        optional: bool,
        value: &mut Value,
        path: &str,
        (label, help): (&str, &str),
    ) -> bool {
        let current = match &*value {
            Value::String(s) => s.clone(),
            Value::Null => "none".to_string(),
            other => other.to_string(),
        };
        let mut chosen = value.clone();
        let r = egui::ComboBox::new(format!("choice:{path}"), label)
            .selected_text(current)
            .show_ui(ui, |ui| {
                if optional {
                    ui.selectable_value(&mut chosen, Value::Null, "none");
                }
                for c in choices {
                    ui.selectable_value(&mut chosen, Value::String(c.to_string()), *c);
                }
            });
        if !help.is_empty() {
            r.response.on_hover_text(help);
        }
        self.show_problems(ui, path);
        if chosen != *value {
            *value = chosen;
            return true;
        }
        false
    }

    /// A `__type__`-tagged union: the type selector, the type's help, then its fields.
    fn union(
        &mut self,
        ui: &mut egui::Ui,
        types: &'static [TypeInfo],
        value: &mut Value,
        path: &str,
        label: &str,
    ) -> bool {
        let mut changed = false;
        let current = value
            .get(TYPE_KEY)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut chosen = current.clone();
        ui.horizontal(|ui| {
            egui::ComboBox::new(format!("type:{path}"), label)
                .selected_text(if chosen.is_empty() {
                    "(choose)"
                } else {
                    chosen.as_str()
                })
                .show_ui(ui, |ui| {
                    for t in types {
                        ui.selectable_value(&mut chosen, t.tag.to_string(), t.tag)
                            .on_hover_text(t.help());
                    }
                });
        });
        self.show_problems(ui, &schema::child(path, TYPE_KEY));
        if chosen != current {
            if let Some(t) = types.iter().find(|t| t.tag == chosen) {
                *value = schema::switch_type(value, t);
                changed = true;
            }
        }
        if let Some(t) = types.iter().find(|t| t.tag == chosen) {
            let help = t.help();
            let first = help.split(". ").next().unwrap_or_default();
            ui.label(egui::RichText::new(first).weak());
            changed |= self.fields(ui, t.fields, value, path);
        }
        changed
    }

    /// One value of any shape, labelled `label`, with `help` on hover.
    fn value(
        &mut self,
        ui: &mut egui::Ui,
        shape: &Shape,
        value: &mut Value,
        path: &str,
        label: &str,
        help: &str,
    ) -> bool {
        let mut changed = false;
        match shape {
            Shape::Bool => {
                let mut b = value.as_bool().unwrap_or(false);
                let r = ui.checkbox(&mut b, label);
                let r = if help.is_empty() {
                    r
                } else {
                    r.on_hover_text(help)
                };
                if r.changed() || !value.is_boolean() {
                    *value = Value::Bool(b);
                    changed = true;
                }
                self.show_problems(ui, path);
            }
            Shape::Integer { .. } | Shape::Float | Shape::Text => {
                ui.horizontal(|ui| {
                    let l = ui.label(label);
                    if !help.is_empty() {
                        l.clone().on_hover_text(help);
                    }
                    let width = match shape {
                        Shape::Text => ui.available_width().clamp(120.0, 320.0),
                        _ => 110.0,
                    };
                    changed |= self.scalar(ui, shape, value, path, (l.id, width));
                });
                self.show_problems(ui, path);
            }
            Shape::Coordinate => {
                ui.horizontal(|ui| {
                    let l = ui.label(label);
                    if !help.is_empty() {
                        l.on_hover_text(help);
                    }
                    changed |= self.coordinate(ui, value, path);
                });
                self.show_problems(ui, path);
            }
            Shape::Optional(inner) => {
                let mut set = !value.is_null();
                let r = ui.checkbox(&mut set, format!("{label} (set)"));
                let r = if help.is_empty() {
                    r
                } else {
                    r.on_hover_text(help)
                };
                if r.changed() {
                    *value = if set { inner.skeleton() } else { Value::Null };
                    changed = true;
                }
                if !value.is_null() {
                    ui.indent(format!("opt:{path}"), |ui| {
                        changed |= self.value(ui, inner, value, path, label, help);
                    });
                } else {
                    self.show_problems(ui, path);
                }
            }
            Shape::Struct { fields, .. } => {
                changed |= self.block(ui, path, label, help, |form, ui| {
                    form.fields(ui, fields, value, path)
                });
            }
            Shape::Union { types, .. } => {
                let types: &'static [TypeInfo] = types;
                changed |= self.block(ui, path, label, help, |form, ui| {
                    form.union(ui, types, value, path, "type")
                });
            }
            Shape::List(inner) => {
                if !value.is_array() {
                    *value = Value::Array(Vec::new());
                    changed = true;
                }
                let n = value.as_array().map_or(0, Vec::len);
                let title = format!("{label} ({n})");
                changed |= self.block(ui, path, &title, help, |form, ui| {
                    let mut changed = false;
                    let mut remove = None;
                    if let Some(items) = value.as_array_mut() {
                        for (i, item) in items.iter_mut().enumerate() {
                            let ipath = schema::index(path, i);
                            ui.horizontal(|ui| {
                                if ui.small_button("Remove").on_hover_text(&ipath).clicked() {
                                    remove = Some(i);
                                }
                                ui.vertical(|ui| {
                                    changed |=
                                        form.value(ui, inner, item, &ipath, &format!("[{i}]"), "");
                                });
                            });
                        }
                        if let Some(i) = remove {
                            items.remove(i);
                            changed = true;
                        }
                        if ui.button(format!("Add to {label}")).clicked() {
                            items.push(inner.skeleton());
                            changed = true;
                        }
                    }
                    changed
                });
            }
            Shape::Map(inner) => {
                if !value.is_object() {
                    *value = Value::Object(Map::new());
                    changed = true;
                }
                changed |= self.block(ui, path, label, help, |form, ui| {
                    let mut changed = false;
                    let mut remove = None;
                    if let Some(map) = value.as_object_mut() {
                        for (k, item) in map.iter_mut() {
                            let kpath = schema::child(path, k);
                            ui.horizontal(|ui| {
                                if ui.small_button("Remove").on_hover_text(&kpath).clicked() {
                                    remove = Some(k.clone());
                                }
                                ui.vertical(|ui| {
                                    changed |= form.value(ui, inner, item, &kpath, k, "");
                                });
                            });
                        }
                        if let Some(k) = remove {
                            map.remove(&k);
                            changed = true;
                        }
                        if ui.button(format!("Add to {label}")).clicked() {
                            let mut i = map.len();
                            while map.contains_key(&format!("new_{i}")) {
                                i += 1;
                            }
                            map.insert(format!("new_{i}"), inner.skeleton());
                            changed = true;
                        }
                    }
                    changed
                });
            }
            Shape::Tuple(shapes) => {
                changed |= self.block(ui, path, label, help, |form, ui| {
                    let mut changed = false;
                    if value.as_array().map(Vec::len) != Some(shapes.len()) {
                        *value = Shape::Tuple(shapes.clone()).skeleton();
                        changed = true;
                    }
                    if let Some(items) = value.as_array_mut() {
                        for (i, (s, item)) in shapes.iter().zip(items.iter_mut()).enumerate() {
                            let ipath = schema::index(path, i);
                            changed |= form.value(ui, s, item, &ipath, &format!("[{i}]"), "");
                        }
                    }
                    changed
                });
            }
            Shape::Roi => {
                changed |= self.block(ui, path, label, help, |form, ui| {
                    let mut changed = false;
                    if !Shape::Roi.fits(value) {
                        *value = Shape::Roi.skeleton();
                        changed = true;
                    }
                    if let Some(items) = value.as_array_mut() {
                        for (i, (name, item)) in
                            ["offset", "shape"].iter().zip(items.iter_mut()).enumerate()
                        {
                            let ipath = schema::index(path, i);
                            ui.horizontal(|ui| {
                                ui.label(*name);
                                changed |= form.coordinate(ui, item, &ipath);
                            });
                            form.show_problems(ui, &ipath);
                        }
                    }
                    changed
                });
            }
            Shape::Any => {
                ui.horizontal(|ui| {
                    let l = ui.label(label);
                    if !help.is_empty() {
                        l.clone().on_hover_text(help);
                    }
                    let text = self
                        .texts
                        .entry(path.to_string())
                        .or_insert_with(|| crate::config::to_yaml(value).trim_end().to_string());
                    let r = ui
                        .add(
                            egui::TextEdit::multiline(text)
                                .code_editor()
                                .desired_rows(2),
                        )
                        .labelled_by(l.id);
                    if r.changed() {
                        if let Ok(v) = crate::config::parse_document(text, path) {
                            *value = v;
                            changed = true;
                        }
                    }
                });
                self.show_problems(ui, path);
            }
        }
        changed
    }

    /// A collapsible block for nested values; its header counts the problems inside.
    fn block(
        &mut self,
        ui: &mut egui::Ui,
        path: &str,
        label: &str,
        help: &str,
        body: impl FnOnce(&mut Self, &mut egui::Ui) -> bool,
    ) -> bool {
        let n = self.below(path);
        let title = if n > 0 {
            egui::RichText::new(format!("{label}  ({n} problem(s))")).color(problem_color(ui))
        } else {
            egui::RichText::new(label)
        };
        let r = egui::CollapsingHeader::new(title)
            .id_salt(format!("block:{path}"))
            .default_open(true)
            .show(ui, |ui| {
                let changed = body(self, ui);
                self.show_problems(ui, path);
                changed
            });
        if !help.is_empty() {
            r.header_response.on_hover_text(help);
        }
        r.body_returned.unwrap_or(false)
    }

    /// A number or string field `width` points wide, labelled by `label`; numbers keep
    /// the text as typed, and text that is not a number is kept as a string so that
    /// validation names the field.
    fn scalar(
        &mut self,
        ui: &mut egui::Ui,
        shape: &Shape,
        value: &mut Value,
        path: &str,
        (label, width): (egui::Id, f32),
    ) -> bool {
        let shown = match &*value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let text = self
            .texts
            .entry(path.to_string())
            .or_insert_with(|| shown.clone());
        if parse_scalar(shape, text) != *value {
            *text = shown;
        }
        let r = ui
            .add(egui::TextEdit::singleline(text).desired_width(width))
            .labelled_by(label);
        if r.changed() {
            *value = parse_scalar(shape, text);
            return true;
        }
        false
    }

    /// A coordinate as one small field per axis, with buttons to add or drop an axis.
    fn coordinate(&mut self, ui: &mut egui::Ui, value: &mut Value, path: &str) -> bool {
        let mut changed = false;
        if !value.is_array() {
            *value = Shape::Coordinate.skeleton();
            changed = true;
        }
        let Some(items) = value.as_array_mut() else {
            return changed;
        };
        let names = axis_names(items.len());
        for (i, item) in items.iter_mut().enumerate() {
            let l = ui.label(names.get(i).copied().unwrap_or("?"));
            let ipath = schema::index(path, i);
            // One short field per axis.
            let axis = (l.id, 56.0);
            changed |= self.scalar(ui, &Shape::Integer { min: i64::MIN }, item, &ipath, axis);
        }
        if items.len() < 4
            && ui
                .small_button("+axis")
                .on_hover_text("add an axis in front")
                .clicked()
        {
            let first = items
                .first()
                .cloned()
                .unwrap_or(Value::Number(Number::from(1)));
            items.insert(0, first);
            changed = true;
        }
        if items.len() > 1
            && ui
                .small_button("-axis")
                .on_hover_text("drop the first axis")
                .clicked()
        {
            items.remove(0);
            changed = true;
        }
        changed
    }
}

/// The document value of `text` typed into a field of `shape`: a number when it reads as
/// one, otherwise the text itself (which validation then reports at the field).
pub(super) fn parse_scalar(shape: &Shape, text: &str) -> Value {
    let t = text.trim();
    match shape {
        Shape::Integer { .. } => t
            .parse::<i64>()
            .map(|v| Value::Number(Number::from(v)))
            .or_else(|_| t.parse::<u64>().map(|v| Value::Number(Number::from(v))))
            .unwrap_or_else(|_| Value::String(text.to_string())),
        Shape::Float => match t.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Value::Number(n),
            None => Value::String(text.to_string()),
        },
        _ => Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use crate::gui::editor::harness::harness;
    use crate::gui::editor::EditorTab;
    use egui_kittest::kittest::Queryable;

    #[test]
    fn a_trainer_made_in_the_form_alone_is_saved_as_typed() {
        let dir = tempfile::tempdir().unwrap();
        let project = crate::store::Project::open(dir.path()).unwrap();
        let mut h = harness(project, EditorTab::Edit);
        h.run();
        h.get_by_label("New trainer").click();
        h.run_steps(2);
        let fill = |h: &mut egui_kittest::Harness<'_, _>, label: &str, text: &str| {
            h.get_all_by_label(label)
                .last()
                .unwrap_or_else(|| panic!("no field {label:?}"))
                .set_text_value_accesskit(text);
            h.run_steps(2);
        };
        fill(&mut h, "name *", "t_form");
        fill(&mut h, "batch_size", "3");
        fill(&mut h, "learning_rate", "fast");
        // Text in a number field is reported at the field, and saving waits for a number.
        h.get_by_label("expected a number, found the string \"fast\"");
        fill(&mut h, "learning_rate", "0.0005");
        assert!(
            h.state().editor.problems.is_empty(),
            "{:?}",
            h.state().editor.problems
        );
        h.get_by_label("Save").click();
        h.run_steps(2);
        let text =
            std::fs::read_to_string(dir.path().join("configs/trainers/t_form.yaml")).unwrap();
        assert!(text.contains("batch_size: 3\n"), "{text}");
        assert!(text.contains("learning_rate: 0.0005\n"), "{text}");
    }
}
