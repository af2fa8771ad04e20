//! A peer's traffic through its exit on the peer's page: put on the WireGuard exit through
//! the page's picker, it shows what the metrics hold for it over the last hour (bytes and
//! packets, humanised) and a chart of it; moved back to direct, nothing.

use std::path::Path;

use super::*;

const PEER: &str = "alice";
/// Rows seeded for the peer: one a minute, this many minutes back from 1.
const SEEDED_MINUTES: i64 = 12;
const BYTES_PER_MINUTE: i64 = 40_000;
const PACKETS_PER_MINUTE: i64 = 30;

/// The browser tests' picd runs with routing off, so no pass ever records exit traffic: the
/// rows are written straight into `routing_exit_metrics`, the table the routing driver adds
/// each pass's growth to and `/api/routing/metrics?peer=` reads. Returns (bytes, packets).
fn seed_exit_traffic(db: &Path, connection: &str) -> Result<(i64, i64)> {
    let conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    for minute in 1..=SEEDED_MINUTES {
        conn.execute(
            "INSERT INTO routing_exit_metrics (bucket, peer_name, connection_id, packets, bytes)
             VALUES (strftime('%Y-%m-%dT%H:%M:00.000000Z', 'now', ?1), ?2, ?3, ?4, ?5)",
            rusqlite::params![
                format!("-{minute} minutes"),
                PEER,
                connection,
                PACKETS_PER_MINUTE,
                BYTES_PER_MINUTE * minute
            ],
        )?;
    }
    let bytes = BYTES_PER_MINUTE * (1..=SEEDED_MINUTES).sum::<i64>();
    Ok((bytes, PACKETS_PER_MINUTE * SEEDED_MINUTES))
}

async fn choose_exit(browser: &WebDriver, connection: &str) -> Result<()> {
    browser
        .execute(
            "const s = document.getElementById('peer-exit'); s.value = arguments[0];
             s.dispatchEvent(new Event('change'));",
            json!([connection]),
        )
        .await?;
    click(browser, "#peer-policy-save").await?;
    browser.wait_for_text("#flash", PEER).await.map(drop)
}

/// `exit_id` is the WireGuard exit's connection.
pub(super) async fn peer_traffic_is_shown(
    browser: &WebDriver,
    api: &AdminApi,
    base: &str,
    state_dir: &Path,
    exit_id: &str,
) -> Result<()> {
    api.post("/api/peers", json!({ "name": PEER })).await?;
    let (bytes, packets) = seed_exit_traffic(&state_dir.join("picd.db"), exit_id)?;
    browser.goto(&format!("{base}/#/peers/{PEER}")).await?;
    browser.wait_for("#peer-policy-form").await?;
    ensure!(
        browser.find_all("#peer-exit-traffic").await?.is_empty(),
        "a direct peer shows exit traffic"
    );
    choose_exit(browser, exit_id).await?;
    // 40,000 B x (1 + ... + 12) = 3,120,000 B = 3.0 MiB; 360 packets.
    let total = browser
        .wait_for_text("#peer-exit-traffic-hour", "packets")
        .await?;
    ensure!(
        total == format!("3.0 MiB · {packets} packets") && bytes == 3_120_000,
        "the peer's hour through its exit: {total}"
    );
    let title = text_of(browser, "#peer-exit-traffic-title").await?;
    ensure!(title.contains(NAME), "the section names the exit: {title}");
    let bars = wait_js(
        browser,
        "the chart's bars",
        "return document.querySelectorAll('#peer-exit-traffic-svg .chart-bar rect').length;",
        json!([]),
    )
    .await?;
    ensure!(
        bars == json!(SEEDED_MINUTES),
        "one bar a seeded minute: {bars}"
    );
    let tallest = browser
        .execute(
            "const rects = [...document.querySelectorAll('#peer-exit-traffic-svg .chart-bar')];
             const top = rects.reduce((a, b) =>
               (+b.querySelector('rect')?.getAttribute('height') || 0) >
               (+a.querySelector('rect')?.getAttribute('height') || 0) ? b : a);
             return top.querySelector('title').textContent;",
            json!([]),
        )
        .await?;
    ensure!(
        tallest.as_str().is_some_and(|t| t.contains("469 KiB")),
        "the tallest bar is the oldest minute, 480,000 B: {tallest}"
    );
    scroll_into_view(browser, "#peer-network").await?;
    full_page_shot(browser, "peer-exit-traffic", 1280).await?;
    browser.set_window_size(390, 844).await?;
    wait_js(
        browser,
        "the chart redrawn at the phone's width",
        "const box = document.getElementById('peer-exit-traffic-chart');
         const svg = document.getElementById('peer-exit-traffic-svg');
         return box.clientWidth < 400 && +svg.getAttribute('width') <= box.clientWidth;",
        json!([]),
    )
    .await?;
    full_page_shot(browser, "peer-exit-traffic-mobile", 390).await?;
    browser.set_window_size(1280, 900).await?;

    // Back to direct: the section goes, and the exit can be deleted again.
    choose_exit(browser, "").await?;
    wait_gone(
        browser,
        "#peer-exit-traffic",
        "a direct peer's exit traffic",
    )
    .await
}

async fn scroll_into_view(browser: &WebDriver, css: &str) -> Result<()> {
    browser
        .execute(
            "document.querySelector(arguments[0]).scrollIntoView({ block: 'start' });",
            json!([css]),
        )
        .await
        .map(drop)
}
