//! The catalog as one plain HTML page, for the registry to serve. Every
//! piece of text from the contract is escaped: comments and schemas are
//! whatever their authors wrote.

use std::fmt::Write as _;

use crate::{Catalog, HEADERS};

impl Catalog {
    /// The whole catalog as a self-contained HTML page.
    pub fn html(&self) -> String {
        let mut page =
            String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        let _ = writeln!(
            page,
            "<title>{}</title>\n<style>body{{font-family:sans-serif;max-width:60em;margin:auto}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .5em;text-align:left}}pre{{background:#f6f6f6;padding:.5em;overflow:auto}}</style>\n</head>\n<body>",
            escape(&self.title)
        );
        let _ = writeln!(
            page,
            "<h1>{}</h1>\n<p>Version {}. Every record carries these headers:</p>\n<ul>",
            escape(&self.title),
            escape(&self.version)
        );
        for (name, what) in HEADERS {
            let _ = writeln!(page, "<li><code>{name}</code>: {}</li>", escape(what));
        }
        page.push_str("</ul>\n");
        for topic in &self.topics {
            let _ = writeln!(
                page,
                "<h2 id=\"{0}\">{0}</h2>\n<p>{1} partition(s); dead letters go to <code>{2}</code>.</p>",
                escape(&topic.name),
                topic.partitions,
                escape(&topic.dead_letter_topic)
            );
            for event in &topic.events {
                let _ = writeln!(page, "<h3>{}</h3>", escape(&event.full_name));
                if let Some(description) = &event.description {
                    let _ = writeln!(page, "<p>{}</p>", escape(description));
                }
                let _ = writeln!(
                    page,
                    "<p>Key <code>{}</code> ({}); subject <code>{}</code>, compatibility {}.</p>",
                    escape(&event.key),
                    escape(&event.key_type),
                    escape(&event.subject),
                    event.compatibility
                );
                page.push_str(
                    "<table>\n<tr><th>Field</th><th>Number</th><th>Type</th><th>Description</th></tr>\n",
                );
                for field in &event.fields {
                    let _ = writeln!(
                        page,
                        "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                        escape(&field.name),
                        field.number,
                        escape(&field.r#type),
                        escape(field.description.as_deref().unwrap_or_default())
                    );
                }
                page.push_str("</table>\n");
                if !event.schema.is_empty() {
                    let _ = writeln!(page, "<pre>{}</pre>", escape(&event.schema));
                }
            }
        }
        page.push_str("</body>\n</html>\n");
        page
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn text_from_the_contract_cannot_become_markup() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }
}
