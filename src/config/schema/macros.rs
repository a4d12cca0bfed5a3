//! The macros that declare config types (`config_struct!`, `config_enum!`, …): each
//! defines a type with its decoder, encoder, validator and field table at once. It is one
//! file because the macros expand into one another.

/// Defines a config struct together with its decoder, encoder, validator and field table.
///
/// Each field is `name: Type` (required) or `name: Type = default`; `name ["key", "alias"…]`
/// sets the key used in files and other accepted spellings; `= default => newer` marks a
/// field of newer DaCapo versions that is only written when it differs from its default,
/// so files stay identical to what DaCapo v0.3.x writes. Doc comments become help text.
macro_rules! config_struct {
    (
        $(#[doc = $sdoc:literal])*
        $(#[refused = $refused:literal])?
        $name:ident {
            $(
                $(#[doc = $fdoc:literal])*
                $(#[no_effect = $no_effect:literal])?
                $field:ident $([$key:literal $(, $alias:literal)*])? : $ty:ty $({ $($choice:literal)|+ })? $(= $default:expr)? $(=> $newer:ident)?
            ),* $(,)?
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $(
                $(#[doc = $fdoc])*
                pub $field: $ty,
            )*
        }

        impl $name {
            /// The fields of this config type, in declaration order.
            pub const FIELDS: &'static [$crate::config::schema::FieldInfo] = &[
                $($crate::config::schema::FieldInfo {
                    name: stringify!($field),
                    key: config_key!($field $(, $key)?),
                    aliases: &[$($($alias),*)?],
                    raw_help: concat!($($fdoc, "\n",)* ""),
                    type_name: stringify!($ty),
                    expected: <$ty as $crate::config::schema::Decode>::expected,
                    default: config_default_value!($ty; $($default)?),
                    shape: <$ty as $crate::config::schema::Decode>::shape,
                    choices: &[$($($choice),+)?],
                    no_effect: config_option!($($no_effect)?),
                },)*
            ];

            /// Help text of this config type (its doc comment).
            pub const HELP: &'static str = concat!($($sdoc, "\n",)* "");

            /// Why Segno refuses to compute with this type, if it does.
            pub const REFUSED: Option<&'static str> = config_option!($($refused)?);
        }

        impl $crate::config::schema::Decode for $name {
            fn expected() -> String {
                format!("a {} mapping", stringify!($name))
            }

            fn shape() -> $crate::config::schema::Shape {
                $crate::config::schema::Shape::Struct { name: stringify!($name), fields: Self::FIELDS }
            }

            fn decode(
                value: &serde_json::Value,
                path: &str,
                problems: &mut $crate::config::schema::Problems,
            ) -> Option<Self> {
                let map = $crate::config::schema::expect_map(value, path, problems, stringify!($name))?;
                $crate::config::schema::check_unknown_keys(map, Self::FIELDS, stringify!($name), path, problems);
                $(
                    let $field = $crate::config::schema::decode_field::<$ty>(
                        map,
                        config_key!($field $(, $key)?),
                        &[$($($alias),*)?],
                        path,
                        problems,
                        config_default!($ty; $($default)?),
                    );
                )*
                Some(Self { $($field: $field?,)* })
            }
        }

        impl $crate::config::schema::Encode for $name {
            fn encode(&self) -> serde_json::Value {
                let mut map = serde_json::Map::new();
                $(
                    if config_written!(self.$field; $ty; $($default)?; $($newer)?) {
                        map.insert(
                            config_key!($field $(, $key)?).to_string(),
                            $crate::config::schema::Encode::encode(&self.$field),
                        );
                    }
                )*
                serde_json::Value::Object(map)
            }

            fn encode_yaml(&self) -> serde_yaml_ng::Value {
                let mut entries = Vec::new();
                $(
                    if config_written!(self.$field; $ty; $($default)?; $($newer)?) {
                        entries.push((
                            config_key!($field $(, $key)?).to_string(),
                            $crate::config::schema::Encode::encode_yaml(&self.$field),
                        ));
                    }
                )*
                $crate::config::schema::sorted_mapping(entries.into_iter())
            }
        }

        impl $crate::config::schema::Validate for $name {
            fn validate(&self, path: &str, problems: &mut $crate::config::schema::Problems) {
                $(
                    let fpath = $crate::config::schema::child(path, config_key!($field $(, $key)?));
                    $crate::config::schema::Validate::validate(&self.$field, &fpath, problems);
                    $crate::config::schema::check_choice(
                        &$crate::config::schema::Encode::encode(&self.$field),
                        &[$($($choice),+)?],
                        &fpath,
                        problems,
                    );
                )*
                $crate::config::schema::Check::check(self, path, problems);
            }
        }
    };
}

macro_rules! config_option {
    () => {
        None
    };
    ($value:literal) => {
        Some($value)
    };
}

macro_rules! config_key {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident, $key:literal) => {
        $key
    };
}

/// Whether a field is written: always, except fields marked `=> newer` (keys only newer
/// DaCapo versions know, which older versions reject as differences) at their default.
macro_rules! config_written {
    ($value:expr; $ty:ty; $($default:expr)?;) => {
        true
    };
    ($value:expr; $ty:ty; $default:expr; newer) => {{
        let default: $ty = $default;
        $value != default
    }};
}

macro_rules! config_default_value {
    ($ty:ty;) => {
        None
    };
    ($ty:ty; $default:expr) => {
        Some(
            (|| {
                let value: $ty = $default;
                $crate::config::schema::Encode::encode(&value)
            }) as fn() -> serde_json::Value,
        )
    };
}

macro_rules! config_default {
    ($ty:ty;) => {
        None::<fn() -> $ty>
    };
    ($ty:ty; $default:expr) => {
        Some((|| $default) as fn() -> $ty)
    };
}

/// Defines a tagged config family (an enum over config structs, tagged by `__type__` with
/// the struct's name), with decoding, encoding, validation and the type table.
macro_rules! config_enum {
    (
        $(#[doc = $edoc:literal])*
        $name:ident: named {
            $(
                $(#[doc = $vdoc:literal])*
                $variant:ident($ty:ident)
            ),* $(,)?
        }
    ) => {
        config_enum! {
            $(#[doc = $edoc])*
            $name {
                $(
                    $(#[doc = $vdoc])*
                    $variant($ty)
                ),*
            }
        }

        impl $name {
            /// The config's name.
            pub fn name(&self) -> &str {
                match self {
                    $(Self::$variant(c) => &c.name,)*
                }
            }
        }
    };
    (
        $(#[doc = $edoc:literal])*
        $name:ident {
            $(
                $(#[doc = $vdoc:literal])*
                $variant:ident($ty:ident)
            ),* $(,)?
        }
    ) => {
        $(#[doc = $edoc])*
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)] // small trees of settings, never hot
        pub enum $name {
            $(
                $(#[doc = $vdoc])*
                $variant($ty),
            )*
        }

        impl $name {
            /// Every concrete type of this family with its tag, help text and fields.
            pub const TYPES: &'static [$crate::config::schema::TypeInfo] = &[
                $($crate::config::schema::TypeInfo {
                    tag: stringify!($ty),
                    raw_help: $ty::HELP,
                    fields: $ty::FIELDS,
                    rust_name: stringify!($ty),
                    variant: concat!(stringify!($name), "::", stringify!($variant)),
                    refused: $ty::REFUSED,
                },)*
            ];

            /// The `__type__` tag of this value (the DaCapo class name).
            pub fn type_tag(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => stringify!($ty),)*
                }
            }

        }


        impl $crate::config::schema::Decode for $name {
            fn expected() -> String {
                format!("a mapping with a `__type__` tag ({})", stringify!($name))
            }

            fn shape() -> $crate::config::schema::Shape {
                $crate::config::schema::Shape::Union { name: stringify!($name), types: Self::TYPES }
            }

            fn decode(
                value: &serde_json::Value,
                path: &str,
                problems: &mut $crate::config::schema::Problems,
            ) -> Option<Self> {
                let map = $crate::config::schema::expect_map(value, path, problems, stringify!($name))?;
                let tags: &[&str] = &[$(stringify!($ty)),*];
                let tag_path = $crate::config::schema::child(path, $crate::config::TYPE_KEY);
                let tag = match map.get($crate::config::TYPE_KEY) {
                    Some(serde_json::Value::String(tag)) => tag.as_str(),
                    Some(other) => {
                        problems.push(&tag_path, format!(
                            "expected a type name string, found {}",
                            $crate::config::schema::describe(other)
                        ));
                        return None;
                    }
                    None => {
                        problems.push(&tag_path, format!(
                            "missing `__type__` tag saying which kind of {} this is; one of: {}",
                            stringify!($name), tags.join(", ")
                        ));
                        return None;
                    }
                };
                $(
                    if tag == stringify!($ty) {
                        return <$ty as $crate::config::schema::Decode>::decode(value, path, problems)
                            .map(Self::$variant);
                    }
                )*
                let mut msg = format!("unknown {} type `{tag}`", stringify!($name));
                if let Some(best) = $crate::config::schema::closest(tag, tags.iter().copied()) {
                    msg.push_str(&format!(" (did you mean `{best}`?)"));
                }
                msg.push_str(&format!("; known types: {}", tags.join(", ")));
                problems.push(&tag_path, msg);
                None
            }
        }

        impl $crate::config::schema::Encode for $name {
            fn encode(&self) -> serde_json::Value {
                let (tag, mut value) = match self {
                    $(Self::$variant(c) => (stringify!($ty), $crate::config::schema::Encode::encode(c)),)*
                };
                if let serde_json::Value::Object(map) = &mut value {
                    map.insert($crate::config::TYPE_KEY.to_string(), serde_json::Value::String(tag.to_string()));
                }
                value
            }

            fn encode_yaml(&self) -> serde_yaml_ng::Value {
                let (tag, value) = match self {
                    $(Self::$variant(c) => (stringify!($ty), $crate::config::schema::Encode::encode_yaml(c)),)*
                };
                match value {
                    serde_yaml_ng::Value::Mapping(map) => $crate::config::schema::sorted_mapping(
                        map.into_iter()
                            .filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), v)))
                            .chain(std::iter::once((
                                $crate::config::TYPE_KEY.to_string(),
                                serde_yaml_ng::Value::String(tag.to_string()),
                            ))),
                    ),
                    other => other,
                }
            }
        }

        impl $crate::config::schema::Validate for $name {
            fn validate(&self, path: &str, problems: &mut $crate::config::schema::Problems) {
                match self {
                    $(Self::$variant(c) => $crate::config::schema::Validate::validate(c, path, problems),)*
                }
            }
        }

        $(
            impl From<$ty> for $name {
                fn from(c: $ty) -> Self {
                    Self::$variant(c)
                }
            }
        )*
    };
}
