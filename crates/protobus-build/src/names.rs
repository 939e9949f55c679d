//! Rust names for Protobuf names, the way prost-build makes them.

use heck::{ToSnakeCase, ToUpperCamelCase};

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "else", "enum", "false", "fn", "for", "if", "impl", "in",
    "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "static", "struct",
    "trait", "true", "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do",
    "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "async",
    "await", "dyn", "try", "gen",
];

fn escape(ident: String) -> String {
    match ident.as_str() {
        // Not allowed as raw identifiers: prost appends an underscore.
        "self" | "super" | "crate" | "Self" => format!("{ident}_"),
        _ if KEYWORDS.contains(&ident.as_str()) => format!("r#{ident}"),
        _ => ident,
    }
}

/// A field, module or method name: `orderId` → `order_id`.
pub(crate) fn snake(name: &str) -> String {
    escape(name.to_snake_case())
}

/// A type name: `order_placed` → `OrderPlaced`.
pub(crate) fn camel(name: &str) -> String {
    escape(name.to_upper_camel_case())
}

/// The Rust path of a message, relative to the contract's root module:
/// package segments and enclosing messages as modules, then the type.
pub(crate) fn message_path(package: &str, nesting: &[&str]) -> String {
    let mut parts: Vec<String> = package
        .split('.')
        .filter(|p| !p.is_empty())
        .map(snake)
        .collect();
    let (name, parents) = nesting.split_last().expect("a message has a name");
    parts.extend(parents.iter().map(|p| snake(p)));
    parts.push(camel(name));
    parts.join("::")
}

/// The handler trait's stem for a topic: `shop.orders` → `ShopOrders`.
pub(crate) fn topic_type(topic: &str) -> String {
    topic
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| p.to_upper_camel_case())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prost() {
        assert_eq!(snake("OrderPlaced"), "order_placed");
        assert_eq!(snake("type"), "r#type");
        assert_eq!(camel("order_placed"), "OrderPlaced");
        assert_eq!(
            message_path("shop.orders.v1", &["Order", "Line"]),
            "shop::orders::v1::order::Line"
        );
        assert_eq!(message_path("", &["Order"]), "Order");
        assert_eq!(topic_type("shop.orders-v2"), "ShopOrdersV2");
    }
}
