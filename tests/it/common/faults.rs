//! Fault scenarios' figures: what was sent, delivered, lost or duplicated.

/// Prints a fault scenario's figure line (sent, acknowledged, consumed,
/// duplicates, lost) and appends it to the file named by `PROTOBUS_FIGURES`,
/// which `scripts/test.sh` prints as a summary once every test has run.
pub fn figure(line: &str) {
    use std::io::Write;
    println!("{line}");
    let Some(path) = std::env::var_os("PROTOBUS_FIGURES") else {
        return;
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.to_string_lossy()));
    writeln!(file, "{line}").expect("writing a figure line");
}

/// What a consumer did with the events sent, matched by event id: which
/// sent ones never arrived, which arrived more than once, and which arrived
/// without having been sent. Counting alone would let one loss and one
/// duplicate cancel out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
    pub unexpected: Vec<String>,
    /// Deliveries beyond the first, summed over every id.
    pub extra_copies: usize,
}

impl Delivery {
    /// Matches `received` (with repeats) against `sent` (each id once).
    pub fn check<'a>(
        sent: impl IntoIterator<Item = &'a str>,
        received: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
        for id in received {
            *seen.entry(id).or_default() += 1;
        }
        let sent: std::collections::BTreeSet<&str> = sent.into_iter().collect();
        let mut delivery = Delivery::default();
        for id in &sent {
            match seen.get(id) {
                None => delivery.lost.push((*id).to_owned()),
                Some(&n) if n > 1 => {
                    delivery.duplicated.push((*id).to_owned());
                    delivery.extra_copies += n - 1;
                }
                Some(_) => {}
            }
        }
        delivery.unexpected = seen
            .keys()
            .filter(|id| !sent.contains(*id))
            .map(|id| (*id).to_owned())
            .collect();
        delivery
    }
}
