//! A JSON list that may still be the text it was read from.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::ops::{Deref, DerefMut};

use super::{Value, read};

/// A JSON list: its items, or, for one read from a request and not yet changed, its text
/// (read on first access, written as is). It is used as the `Vec` of its items.
#[derive(Debug, Clone, Default)]
pub struct List<'a> {
    /// The items, when the list is not (or no longer) its text.
    items: Vec<Value<'a>>,
    /// The list's text while it is unchanged. Boxed: most lists are never text, and a
    /// small `List` keeps every `Value` small (a Pod is mostly values, moved and copied).
    text: Option<Box<Text<'a>>>,
}

/// A list's JSON text and what was read from it.
#[derive(Debug, Clone)]
struct Text<'a> {
    text: Cow<'a, str>,
    /// How deep the list is in the document it was read from.
    depth: u16,
    /// The items, read from `text` on first access. (A cell makes `List`, and with it
    /// `Value`, invariant in `'a`: a document and what is put into it share one lifetime,
    /// chosen when it is read.)
    read: OnceCell<Vec<Value<'a>>>,
}

impl<'a> List<'a> {
    /// A list still as its JSON text, `depth` deep in its document.
    pub(super) fn of_text(text: &'a str, depth: u16) -> Self {
        List {
            items: Vec::new(),
            text: Some(Box::new(Text {
                text: Cow::Borrowed(text),
                depth,
                read: OnceCell::new(),
            })),
        }
    }

    /// The text the list was read from, while it is unchanged.
    pub(super) fn text(&self) -> Option<&str> {
        self.text.as_deref().map(|t| t.text.as_ref())
    }

    /// Whether its items have been read (or it never was text).
    #[cfg(test)]
    pub(crate) fn is_read(&self) -> bool {
        self.text.as_ref().is_none_or(|t| t.read.get().is_some())
    }

    /// The position of the first item that is not an object. A list still as its text is
    /// scanned, not read: its items are built only when something uses them.
    pub fn first_non_object(&self) -> Option<usize> {
        match self.text.as_deref() {
            Some(t) if t.read.get().is_none() => read::first_non_object(&t.text),
            _ => self.iter().position(|v| !v.is_object()),
        }
    }

    /// The same list, owning all it holds (its text, if it is still text: what was read
    /// from the borrowed text is read again from the copy).
    pub(super) fn into_owned<'b>(self) -> List<'b> {
        match self.text {
            Some(t) => List {
                items: Vec::new(),
                text: Some(Box::new(Text {
                    text: Cow::Owned(t.text.into_owned()),
                    depth: t.depth,
                    read: OnceCell::new(),
                })),
            },
            None => self.items.into_iter().map(Value::into_owned).collect(),
        }
    }

    /// The items, read from the text on first access.
    fn items(&self) -> &Vec<Value<'a>> {
        let Some(t) = self.text.as_deref() else {
            return &self.items;
        };
        match &t.text {
            Cow::Borrowed(text) => {
                let text: &'a str = text;
                t.read.get_or_init(|| read::list_items(text, t.depth))
            }
            // Text of its own (an owned copy): what is read from it is copied too.
            Cow::Owned(text) => t.read.get_or_init(|| {
                read::list_items(text, t.depth)
                    .into_iter()
                    .map(Value::into_owned)
                    .collect()
            }),
        }
    }
}

impl<'a> Deref for List<'a> {
    type Target = Vec<Value<'a>>;

    fn deref(&self) -> &Vec<Value<'a>> {
        self.items()
    }
}

impl DerefMut for List<'_> {
    /// The items, to change: the text no longer says what the list is.
    fn deref_mut(&mut self) -> &mut Self::Target {
        if self.text.is_some() {
            // (Not `self.deref()`: on `&mut List` that is `&mut`'s own Deref, which reads
            // nothing.)
            self.items();
            if let Some(mut t) = self.text.take() {
                self.items = t.read.take().unwrap_or_default();
            }
        }
        &mut self.items
    }
}

impl<'a> From<Vec<Value<'a>>> for List<'a> {
    fn from(items: Vec<Value<'a>>) -> Self {
        List { items, text: None }
    }
}

impl<'a> FromIterator<Value<'a>> for List<'a> {
    fn from_iter<I: IntoIterator<Item = Value<'a>>>(iter: I) -> Self {
        List::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl<'a> IntoIterator for List<'a> {
    type Item = Value<'a>;
    type IntoIter = std::vec::IntoIter<Value<'a>>;

    fn into_iter(mut self) -> Self::IntoIter {
        std::mem::take(&mut *self).into_iter()
    }
}

impl<'a, 'l> IntoIterator for &'l List<'a> {
    type Item = &'l Value<'a>;
    type IntoIter = std::slice::Iter<'l, Value<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Lists are equal when their items are, whatever their lifetimes.
impl<'b> PartialEq<List<'b>> for List<'_> {
    fn eq(&self, other: &List<'b>) -> bool {
        if let (Some(a), Some(b)) = (self.text(), other.text())
            && a == b
        {
            return true;
        }
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(x, y)| x == y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_changed_before_it_was_read_keeps_its_items() {
        let text = r#"{"spec":{"containers":[{"name":"a","volumeMounts":[{"mountPath":"/x","name":"y"}]}]}}"#;
        let v = Value::parse(text).unwrap();
        let mut container = v["spec"]["containers"][0].clone();
        let mounts = container
            .as_object_mut()
            .and_then(|c| c.get_mut("volumeMounts"))
            .and_then(Value::as_array_mut)
            .unwrap();
        assert_eq!(mounts.len(), 1);
        mounts.push("added".into());
        assert_eq!(
            container.to_json(),
            r#"{"name":"a","volumeMounts":[{"mountPath":"/x","name":"y"},"added"]}"#
        );
    }
}
