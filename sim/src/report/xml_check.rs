//! Test support: a small well-formedness checker for the XML the report
//! writes (SVG), and a helper listing the series polylines.
//!
//! It checks what matters for a standalone file: an optional prolog, one
//! root element, balanced and properly nested tags, quoted and unique
//! attributes, and only the five predefined entities or character
//! references. It is not a validating parser.

use std::collections::BTreeSet;

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | ':' | '.')
}

fn check_entities(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        let after = &rest[i + 1..];
        let end = after
            .find(';')
            .ok_or_else(|| format!("unterminated entity in {text:?}"))?;
        let name = &after[..end];
        let ok = matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
            || (name.starts_with("#x")
                && name.len() > 2
                && name[2..].chars().all(|c| c.is_ascii_hexdigit()))
            || (name.starts_with('#')
                && name.len() > 1
                && name[1..].chars().all(|c| c.is_ascii_digit()));
        if !ok {
            return Err(format!("unknown entity &{name};"));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

/// Parses a tag's inside (`name attr="v" ...`), returning its name.
fn parse_tag(inner: &str) -> Result<String, String> {
    let name: String = inner.chars().take_while(|c| is_name_char(*c)).collect();
    if name.is_empty() {
        return Err(format!("tag without a name: <{inner}>"));
    }
    let mut rest = inner[name.len()..].trim_start();
    let mut seen = BTreeSet::new();
    while !rest.is_empty() {
        let attr: String = rest.chars().take_while(|c| is_name_char(*c)).collect();
        if attr.is_empty() {
            return Err(format!("bad attribute syntax in <{inner}>"));
        }
        if !seen.insert(attr.clone()) {
            return Err(format!("duplicate attribute {attr} in <{name}>"));
        }
        rest = rest[attr.len()..].trim_start();
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| format!("attribute {attr} without a value in <{name}>"))?
            .trim_start();
        let quote = rest
            .chars()
            .next()
            .filter(|q| *q == '"' || *q == '\'')
            .ok_or_else(|| format!("unquoted attribute {attr} in <{name}>"))?;
        let body = &rest[1..];
        let end = body
            .find(quote)
            .ok_or_else(|| format!("unterminated attribute {attr} in <{name}>"))?;
        let value = &body[..end];
        if value.contains('<') {
            return Err(format!("raw < in attribute {attr} of <{name}>"));
        }
        check_entities(value)?;
        rest = body[end + 1..].trim_start();
    }
    Ok(name)
}

/// Checks that `doc` is well-formed XML with a single root element.
pub(crate) fn check_well_formed(doc: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0usize;
    let mut rest = doc;
    let mut first = true;
    loop {
        let Some(lt) = rest.find('<') else {
            if !rest.trim().is_empty() && stack.is_empty() {
                return Err("text after the root element".to_owned());
            }
            check_entities(rest)?;
            break;
        };
        let text = &rest[..lt];
        if stack.is_empty() && !text.trim().is_empty() {
            return Err(format!("text outside the root element: {text:?}"));
        }
        check_entities(text)?;
        let tail = &rest[lt..];
        if let Some(body) = tail.strip_prefix("<?") {
            if !first {
                return Err("processing instruction after the start".to_owned());
            }
            let end = body.find("?>").ok_or("unterminated <?")?;
            rest = &body[end + 2..];
        } else if let Some(body) = tail.strip_prefix("<!--") {
            let end = body.find("-->").ok_or("unterminated comment")?;
            rest = &body[end + 3..];
        } else if let Some(body) = tail.strip_prefix("</") {
            let end = body.find('>').ok_or("unterminated end tag")?;
            let name = body[..end].trim();
            match stack.pop() {
                Some(open) if open == name => {}
                Some(open) => return Err(format!("</{name}> closes <{open}>")),
                None => return Err(format!("</{name}> without a start tag")),
            }
            rest = &body[end + 1..];
        } else {
            // Start or empty-element tag; find its end outside quotes.
            let body = &tail[1..];
            let mut quote: Option<char> = None;
            let mut end = None;
            for (i, ch) in body.char_indices() {
                match (quote, ch) {
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), _) => {}
                    (None, '"' | '\'') => quote = Some(ch),
                    (None, '<') => return Err("< inside a tag".to_owned()),
                    (None, '>') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.ok_or("unterminated start tag")?;
            let inner = &body[..end];
            let (inner, empty) = match inner.strip_suffix('/') {
                Some(i) => (i, true),
                None => (inner, false),
            };
            let name = parse_tag(inner.trim_end())?;
            if stack.is_empty() {
                roots += 1;
                if roots > 1 {
                    return Err(format!("second root element <{name}>"));
                }
            }
            if !empty {
                stack.push(name);
            }
            rest = &body[end + 1..];
        }
        first = false;
    }
    if let Some(open) = stack.pop() {
        return Err(format!("<{open}> is never closed"));
    }
    if roots != 1 {
        return Err("no root element".to_owned());
    }
    Ok(())
}

/// The `data-series` names of every series polyline, in order (escaped as
/// written).
pub(crate) fn polyline_series(svg: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in svg.split("<polyline").skip(1) {
        if let Some(start) = piece.find("data-series=\"") {
            let value = &piece[start + "data-series=\"".len()..];
            if let Some(end) = value.find('"') {
                out.push(value[..end].to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed() {
        let doc = "<?xml version=\"1.0\"?>\n<svg a=\"1\" b='2'><g><t>x &amp; y &#38;</t></g>\
                   <!-- c --><line/></svg>\n";
        assert_eq!(check_well_formed(doc), Ok(()));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "<svg><g></svg>",
            "<svg></g>",
            "<svg>a & b</svg>",
            "<svg a=1></svg>",
            "<svg a=\"1\" a=\"2\"></svg>",
            "<svg></svg><svg></svg>",
            "<svg><g>",
            "text",
            "<svg a=\"<\"></svg>",
        ] {
            assert!(check_well_formed(bad).is_err(), "{bad}");
        }
    }
}
