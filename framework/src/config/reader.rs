//! An error-collecting reader over the spanned TOML tree: typed getters record an error (path,
//! line, message, hint) and carry on, instead of stopping at the first problem like serde.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::ConfigError;

/// A TOML value with its byte span in the source.
pub(super) type Val<'i> = Spanned<DeValue<'i>>;

/// Byte span in the source, `None` where unknown.
pub(super) type Span = Option<Range<usize>>;

/// Collects errors and turns byte offsets into line numbers.
pub(super) struct Diag {
    line_starts: Vec<usize>,
    errors: Vec<ConfigError>,
}

impl Diag {
    pub(super) fn new(src: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        Diag {
            line_starts,
            errors: Vec::new(),
        }
    }

    /// 1-based line of the start of `span` (`None` for the empty span at 0, which the parser
    /// gives to the document root).
    pub(super) fn line(&self, span: &Span) -> Option<usize> {
        let span = span.as_ref()?;
        if span.start == 0 && span.end == 0 {
            return None;
        }
        Some(self.line_starts.partition_point(|&s| s <= span.start))
    }

    /// Records an error.
    pub(super) fn error(
        &mut self,
        path: impl Into<String>,
        span: &Span,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let line = self.line(span);
        self.errors.push(ConfigError {
            path: path.into(),
            line,
            message: message.into(),
            hint: hint.into(),
        });
    }

    /// Number of errors recorded so far.
    pub(super) fn count(&self) -> usize {
        self.errors.len()
    }

    /// The errors in file order (errors without a line first; stable otherwise).
    pub(super) fn into_errors(self) -> Vec<ConfigError> {
        let mut errors = self.errors;
        errors.sort_by_key(|e| e.line.unwrap_or(0));
        errors
    }
}

/// A value read from the file (or defaulted), with where it came from for later errors.
#[derive(Debug, Clone)]
pub(super) struct At<T> {
    /// The value.
    pub(super) v: T,
    /// Its path (`ports[0].mtu`).
    pub(super) path: String,
    /// Its span, or the span of the enclosing table header when defaulted.
    pub(super) span: Span,
}

/// The outcome of reading an optional field.
#[derive(Debug, Clone)]
pub(super) enum Got<T> {
    /// Not in the file.
    Absent,
    /// In the file but invalid; an error has been recorded.
    Bad,
    /// Present and valid.
    Ok(At<T>),
}

impl<T> Got<T> {
    /// `Some` unless bad; `Absent` becomes `dflt`.
    pub(super) fn or(self, dflt: At<T>) -> Option<At<T>> {
        match self {
            Got::Absent => Some(dflt),
            Got::Bad => None,
            Got::Ok(v) => Some(v),
        }
    }

    /// `Some(None)` if absent, `Some(Some(v))` if valid, `None` if bad.
    pub(super) fn optional(self) -> Option<Option<T>> {
        match self {
            Got::Absent => Some(None),
            Got::Bad => None,
            Got::Ok(v) => Some(Some(v.v)),
        }
    }

    /// Like [`Got::optional`], keeping the location of a valid value.
    pub(super) fn optional_at(self) -> Option<Option<At<T>>> {
        match self {
            Got::Absent => Some(None),
            Got::Bad => None,
            Got::Ok(v) => Some(Some(v)),
        }
    }

    pub(super) fn is_absent(&self) -> bool {
        matches!(self, Got::Absent)
    }

    pub(super) fn is_bad(&self) -> bool {
        matches!(self, Got::Bad)
    }

    /// Applies `f` to a valid value; `f` returning `None` (having recorded an error) makes it bad.
    pub(super) fn and_then<U>(self, f: impl FnOnce(At<T>) -> Option<At<U>>) -> Got<U> {
        match self {
            Got::Absent => Got::Absent,
            Got::Bad => Got::Bad,
            Got::Ok(v) => f(v).map_or(Got::Bad, Got::Ok),
        }
    }
}

/// Short description of a value for "expected X, got Y" messages.
pub(super) fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => {
            if s.chars().count() > 40 {
                let short: String = s.chars().take(37).collect();
                format!("string \"{short}...\"")
            } else {
                format!("string {s:?}")
            }
        }
        DeValue::Integer(i) => format!("integer {i}"),
        DeValue::Float(x) => format!("float {x}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(d) => format!("datetime {d}"),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

/// Reads an integer in `lo..=hi`.
pub(super) fn int(
    d: &mut Diag,
    v: &Val<'_>,
    path: &str,
    lo: i128,
    hi: i128,
    hint: &str,
) -> Option<i128> {
    let span = Some(v.span());
    let DeValue::Integer(i) = v.get_ref() else {
        d.error(
            path,
            &span,
            format!("expected an integer, got {}", describe(v.get_ref())),
            hint,
        );
        return None;
    };
    let Ok(n) = i128::from_str_radix(i.as_str(), i.radix()) else {
        d.error(
            path,
            &span,
            format!("must be between {lo} and {hi}, got {i}"),
            hint,
        );
        return None;
    };
    if n < lo || n > hi {
        d.error(
            path,
            &span,
            format!("must be between {lo} and {hi}, got {n}"),
            hint,
        );
        return None;
    }
    Some(n)
}

/// Reads a string.
pub(super) fn string<'a>(d: &mut Diag, v: &'a Val<'_>, path: &str, hint: &str) -> Option<&'a str> {
    match v.get_ref() {
        DeValue::String(s) => Some(s.as_ref()),
        other => {
            d.error(
                path,
                &Some(v.span()),
                format!("expected a string, got {}", describe(other)),
                hint,
            );
            None
        }
    }
}

/// Reads one of a fixed set of strings.
pub(super) fn choice(
    d: &mut Diag,
    v: &Val<'_>,
    path: &str,
    choices: &[&'static str],
) -> Option<&'static str> {
    let hint = format!("expected one of {}", quoted_list(choices));
    let s = string(d, v, path, &hint)?;
    if let Some(c) = choices.iter().find(|c| **c == s) {
        return Some(c);
    }
    let hint = match suggest(s, choices.iter().copied()) {
        Some(best) => format!("did you mean \"{best}\"? ({hint})"),
        None => hint,
    };
    d.error(
        path,
        &Some(v.span()),
        format!("unknown value \"{s}\""),
        hint,
    );
    None
}

/// `"a", "b", "c"`.
pub(super) fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Levenshtein distance between two strings (by chars).
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
pub(super) fn suggest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let lower = word.to_ascii_lowercase();
    let max = match word.chars().count() {
        0..=3 => 1,
        4..=8 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(dist, _)| *dist <= max)
        .min_by_key(|(dist, _)| *dist)
        .map(|(_, c)| c)
}

/// A hint for a reference to an unknown name: "did you mean `x`? defined: a, b".
pub(super) fn name_hint(kind: &str, word: &str, names: &[&str]) -> String {
    let defined = if names.is_empty() {
        format!("no valid {kind} is defined")
    } else {
        format!("{kind} defined: {}", names.join(", "))
    };
    match suggest(word, names.iter().copied()) {
        Some(best) => format!("did you mean `{best}`? ({defined})"),
        None => defined,
    }
}

/// A table being read: remembers which keys were asked for, so [`Table::finish`] can report the
/// others as unknown.
pub(super) struct Table<'a, 'i> {
    map: &'a DeTable<'i>,
    /// Path of the table itself (empty for the root).
    pub(super) path: String,
    /// Span of the table (header for `[x]`, braces for inline tables).
    pub(super) span: Span,
    known: Vec<&'static str>,
}

impl<'a, 'i> Table<'a, 'i> {
    /// The document root.
    pub(super) fn root(map: &'a DeTable<'i>) -> Self {
        Table {
            map,
            path: String::new(),
            span: None,
            known: Vec::new(),
        }
    }

    /// Interprets `v` as a table, recording a type error otherwise.
    pub(super) fn of(d: &mut Diag, v: &'a Val<'i>, path: String, hint: &str) -> Option<Self> {
        match v.get_ref() {
            DeValue::Table(map) => Some(Table {
                map,
                path,
                span: Some(v.span()),
                known: Vec::new(),
            }),
            other => {
                d.error(
                    path,
                    &Some(v.span()),
                    format!("expected a table, got {}", describe(other)),
                    hint,
                );
                None
            }
        }
    }

    /// Path of a key of this table.
    pub(super) fn child(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// True if the key is present (does not mark it as known).
    pub(super) fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Span of a key's value, if present.
    pub(super) fn value_span(&self, key: &str) -> Span {
        self.map.get(key).map(|v| v.span())
    }

    /// Span of a key itself, if present.
    pub(super) fn key_span(&self, key: &str) -> Span {
        self.map.get_key_value(key).map(|(k, _)| k.span())
    }

    /// Marks keys as known without reading them.
    pub(super) fn mark(&mut self, keys: &[&'static str]) {
        self.known.extend_from_slice(keys);
    }

    /// The raw value of a key and its path; marks the key as known.
    pub(super) fn raw(&mut self, key: &'static str) -> Option<(&'a Val<'i>, String)> {
        self.known.push(key);
        let v = self.map.get(key)?;
        Some((v, self.child(key)))
    }

    /// A default value located at this table.
    pub(super) fn dflt<T>(&self, key: &str, v: T) -> At<T> {
        At {
            v,
            path: self.child(key),
            span: self.span.clone(),
        }
    }

    /// Records "missing required field" for an absent key; passes other outcomes through.
    pub(super) fn required<T>(
        &self,
        d: &mut Diag,
        key: &str,
        got: Got<T>,
        hint: &str,
    ) -> Option<At<T>> {
        match got {
            Got::Absent => {
                d.error(
                    self.child(key),
                    &self.span,
                    format!("missing required field `{key}`"),
                    hint,
                );
                None
            }
            Got::Bad => None,
            Got::Ok(v) => Some(v),
        }
    }

    /// Reads a value with a custom reader.
    pub(super) fn with<T>(
        &mut self,
        d: &mut Diag,
        key: &'static str,
        f: impl FnOnce(&mut Diag, &'a Val<'i>, &str) -> Option<T>,
    ) -> Got<T> {
        let Some((v, path)) = self.raw(key) else {
            return Got::Absent;
        };
        match f(d, v, &path) {
            Some(x) => Got::Ok(At {
                v: x,
                path,
                span: Some(v.span()),
            }),
            None => Got::Bad,
        }
    }

    /// Reads an integer in `lo..=hi`.
    pub(super) fn int<T>(
        &mut self,
        d: &mut Diag,
        key: &'static str,
        lo: T,
        hi: T,
        hint: &str,
    ) -> Got<T>
    where
        T: TryFrom<i128> + Into<i128> + Copy,
    {
        let (lo, hi) = (lo.into(), hi.into());
        self.with(d, key, |d, v, path| {
            int(d, v, path, lo, hi, hint).and_then(|n| T::try_from(n).ok())
        })
    }

    /// Reads a boolean.
    pub(super) fn boolean(&mut self, d: &mut Diag, key: &'static str) -> Got<bool> {
        self.with(d, key, |d, v, path| match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                d.error(
                    path,
                    &Some(v.span()),
                    format!("expected a boolean, got {}", describe(other)),
                    "write true or false (without quotes)",
                );
                None
            }
        })
    }

    /// Reads one of a fixed set of strings.
    pub(super) fn choice(
        &mut self,
        d: &mut Diag,
        key: &'static str,
        choices: &[&'static str],
    ) -> Got<&'static str> {
        self.with(d, key, |d, v, path| choice(d, v, path, choices))
    }

    /// Reads an array, returning its elements.
    pub(super) fn array(
        &mut self,
        d: &mut Diag,
        key: &'static str,
        hint: &str,
    ) -> Got<&'a [Val<'i>]> {
        self.with(d, key, |d, v, path| match v.get_ref() {
            DeValue::Array(a) => Some(&a[..]),
            other => {
                d.error(
                    path,
                    &Some(v.span()),
                    format!("expected an array, got {}", describe(other)),
                    hint,
                );
                None
            }
        })
    }

    /// The entries of this table (key, key span, value).
    pub(super) fn entries(&self) -> impl Iterator<Item = (&'a str, Span, &'a Val<'i>)> {
        self.map
            .iter()
            .map(|(k, v)| (k.get_ref().as_ref(), Some(k.span()), v))
    }

    /// Reports every key that was not asked for as unknown, suggesting the closest known key.
    pub(super) fn finish(self, d: &mut Diag) {
        let mut known = self.known.clone();
        known.sort_unstable();
        known.dedup();
        for (key, span, _) in self.entries() {
            if known.contains(&key) {
                continue;
            }
            let valid = known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let hint = match suggest(key, known.iter().copied()) {
                Some(best) => format!("did you mean `{best}`? (valid fields here: {valid})"),
                None => format!("valid fields here: {valid}"),
            };
            let what = if self.path.is_empty() {
                "section"
            } else {
                "field"
            };
            d.error(
                self.child(key),
                &span,
                format!("unknown {what} `{key}`"),
                hint,
            );
        }
    }
}
