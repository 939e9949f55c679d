//! Prometheus text: scraping it and reading series.

use std::time::Duration;

/// The Prometheus text at `http://ADDRESS/metrics`, waiting up to 30 s for it.
pub async fn scrape(address: std::net::SocketAddr) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match reqwest::get(format!("http://{address}/metrics")).await {
            Ok(response) if response.status().is_success() => {
                return response.text().await.unwrap();
            }
            other => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no metrics at {address}: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The value of the series `name` whose labels include `labels`; 0 when absent.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    series(text, name, labels).unwrap_or(0.0)
}

/// The summed value of the series `name` whose labels include `labels`;
/// `None` when there is none (a gauge that is missing is not a gauge at 0).
pub fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
            series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .reduce(|a, b| a + b)
}
