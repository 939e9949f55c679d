//! A handler that causes a follow-up event: for each `OrderPlaced` it logs
//! "billing the order" and sends an `OrderPaid` with
//! `SendOptions::caused_by`; it counts the `OrderPaid`s it handles. For the
//! tests that follow correlation ids and traces from one event to the next.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use protobus::contract::ShopOrdersHandler;
use protobus::contract::shop::orders::v1::{OrderPaid, OrderPlaced, OrderShipped};
use protobus_runtime::{EventContext, EventProducer, HandlerError, SendOptions};

#[derive(Clone)]
pub struct Billing {
    pub producer: EventProducer,
    /// `OrderPaid` events handled.
    pub paid: Arc<AtomicUsize>,
}

impl Billing {
    pub fn new(producer: EventProducer) -> Self {
        Billing {
            producer,
            paid: Arc::default(),
        }
    }
}

impl ShopOrdersHandler for Billing {
    async fn order_placed(
        &self,
        order: OrderPlaced,
        context: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        tracing::info!(order_id = order.order_id, "billing the order");
        let paid = OrderPaid {
            order_id: order.order_id,
            ..OrderPaid::default()
        };
        self.producer
            .send_with(&paid, SendOptions::caused_by(context))
            .await
            .map_err(|e| HandlerError::retryable(e.to_string()))?;
        Ok(())
    }
    async fn order_paid(&self, _: OrderPaid, _: &EventContext<'_>) -> Result<(), HandlerError> {
        self.paid.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    async fn order_shipped(
        &self,
        _: OrderShipped,
        _: &EventContext<'_>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}
