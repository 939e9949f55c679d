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

/// Two topics whose handler traits would get one Rust name (`shop.orders`
/// and `shop_orders` both give `ShopOrdersHandler`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "topics {first:?} and {second:?} would both get the handler trait `{stem}Handler`; rename one of the topics"
)]
pub struct TopicTypeClash {
    /// The Rust stem both give.
    pub stem: String,
    /// The topic met first.
    pub first: String,
    /// The topic met second.
    pub second: String,
    /// The position of the second among the topics checked.
    pub index: usize,
}

/// Checks that the topics (one entry per event, repeats allowed) give
/// handler traits of distinct names.
pub fn check_topic_types<'a>(
    topics: impl IntoIterator<Item = &'a str>,
) -> Result<(), TopicTypeClash> {
    let mut seen: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
    for (index, topic) in topics.into_iter().enumerate() {
        let stem = topic_type(topic);
        match seen.get(&stem) {
            Some(first) if *first != topic => {
                return Err(TopicTypeClash {
                    stem,
                    first: (*first).to_owned(),
                    second: topic.to_owned(),
                    index,
                });
            }
            Some(_) => {}
            None => {
                seen.insert(stem, topic);
            }
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
    fn one_handler_trait_per_topic() {
        assert!(check_topic_types(["shop.orders", "shop.orders", "shop.customers"]).is_ok());
        let clash =
            check_topic_types(["shop.orders", "shop.customers", "shop_orders"]).unwrap_err();
        assert_eq!((clash.index, clash.stem.as_str()), (2, "ShopOrders"));
        assert_eq!(
            clash.to_string(),
            "topics \"shop.orders\" and \"shop_orders\" would both get the handler trait `ShopOrdersHandler`; rename one of the topics"
        );
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
