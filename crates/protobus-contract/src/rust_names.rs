//! Rust names for Protobuf names, the way prost-build makes them, and the
//! names Protobus gives a topic's handler and each event's method.

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
pub fn snake(name: &str) -> String {
    escape(name.to_snake_case())
}

/// A type name: `order_placed` → `OrderPlaced`.
pub fn camel(name: &str) -> String {
    escape(name.to_upper_camel_case())
}

/// The Rust path of a message, relative to the contract's root module:
/// package segments and enclosing messages as modules, then the type.
pub fn message_path(package: &str, nesting: &[&str]) -> String {
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

/// The stem of a topic's handler trait and dispatcher: `shop.orders` →
/// `ShopOrders` (`ShopOrdersHandler`, `ShopOrdersDispatcher`).
pub fn topic_type(topic: &str) -> String {
    topic
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| p.to_upper_camel_case())
        .collect()
}

/// The handler method of an event type, from its message name:
/// `OrderPlaced` → `order_placed`.
pub fn handler_method(message_name: &str) -> String {
    snake(message_name)
}

/// Two event types of one topic whose messages would both be handled by
/// one method (`shop.v1.OrderPlaced` and `shop.v2.OrderPlaced` on
/// `shop.orders`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "events {first} and {second} on topic {topic} would both be handled by `{method}`; rename one of the messages"
)]
pub struct HandlerClash {
    /// The topic.
    pub topic: String,
    /// The method both would need.
    pub method: String,
    /// The full name of the event met first.
    pub first: String,
    /// The full name of the event met second.
    pub second: String,
    /// The position of the second among the events checked.
    pub index: usize,
}

/// Checks that every event type, given as (topic, message name, full
/// name), gets a method of its own on its topic's handler.
pub fn check_handler_methods<'a>(
    events: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
) -> Result<(), HandlerClash> {
    let mut seen: std::collections::HashMap<(&str, String), &str> =
        std::collections::HashMap::new();
    for (index, (topic, message, full_name)) in events.into_iter().enumerate() {
        let method = handler_method(message);
        if let Some(first) = seen.insert((topic, method.clone()), full_name) {
            return Err(HandlerClash {
                topic: topic.to_owned(),
                method,
                first: first.to_owned(),
                second: full_name.to_owned(),
                index,
            });
        }
    }
    Ok(())
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

    #[test]
    fn one_method_per_message_name_and_topic() {
        let events = [
            ("shop.orders", "OrderPlaced", "shop.v1.OrderPlaced"),
            ("shop.audit", "OrderPlaced", "shop.audit.OrderPlaced"),
            ("shop.orders", "order_placed", "shop.v2.order_placed"),
        ];
        assert!(check_handler_methods(events[..2].iter().copied()).is_ok());
        let clash = check_handler_methods(events).unwrap_err();
        assert_eq!((clash.index, clash.method.as_str()), (2, "order_placed"));
        assert_eq!(
            clash.to_string(),
            "events shop.v1.OrderPlaced and shop.v2.order_placed on topic shop.orders would both be handled by `order_placed`; rename one of the messages"
        );
    }
}
