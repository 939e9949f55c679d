// A handler with one method per event type of its topic compiles.
use protobus_fixtures::v2::EvoAccountsHandler;
use protobus_fixtures::v2::evo::accounts::{AccountClosed, AccountOpened};
use protobus_runtime::{EventContext, HandlerError};

struct Accounts;

impl EvoAccountsHandler for Accounts {
    async fn account_opened(&self, _: AccountOpened, _: &EventContext<'_>) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn account_closed(&self, _: AccountClosed, _: &EventContext<'_>) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {
    let _ = protobus_fixtures::v2::EvoAccountsDispatcher(Accounts);
}
