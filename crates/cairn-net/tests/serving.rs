//! Two real event loops on loopback TCP: limits on the sync requests one node answers.

use std::time::Duration;

use cairn_net::{Client, Config, Event, Keypair, Multiaddr, PeerId};
use tokio::sync::mpsc;

/// Generous, for two busy cores; every wait below ends as soon as its condition holds.
const DEADLINE: Duration = Duration::from_secs(60);

async fn start() -> (Client, mpsc::Receiver<Event>) {
    start_with(|_| {}).await
}

async fn start_with(adjust: impl FnOnce(&mut Config)) -> (Client, mpsc::Receiver<Event>) {
    let mut config = Config::new(Keypair::generate_ed25519());
    adjust(&mut config);
    config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("address")];
    config.kademlia = false;
    let (client, events, event_loop) = cairn_net::new(config).expect("network starts");
    tokio::spawn(event_loop.run());
    (client, events.main)
}

/// The next event that `pick` accepts, skipping the others.
async fn next<T>(events: &mut mpsc::Receiver<Event>, pick: impl Fn(Event) -> Option<T>) -> T {
    tokio::time::timeout(DEADLINE, async {
        loop {
            let event = events.recv().await.expect("event loop runs");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
    .expect("the event came in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_peer_cannot_hold_more_than_eight_requests_being_answered() {
    let (server, mut server_events) = start().await;
    let (asker, mut asker_events) = start().await;
    let address: Multiaddr = next(&mut server_events, |event| match event {
        Event::Listening { address } => Some(address),
        _ => None,
    })
    .await;
    let server_id: PeerId = asker.dial(address).await.expect("dial");
    next(&mut asker_events, |event| match event {
        Event::Connected { peer, .. } if peer == server_id => Some(()),
        _ => None,
    })
    .await;

    // Twelve requests at once; the server answers none until it has seen what it accepted.
    let asks: Vec<_> = (0..12u8)
        .map(|n| {
            let asker = asker.clone();
            tokio::spawn(async move { asker.queue_sync_request(server_id, vec![n]).await?.await })
        })
        .collect();
    let mut tokens = Vec::new();
    while tokens.len() < 8 {
        let (token, request) = next(&mut server_events, |event| match event {
            Event::SyncRequest { token, request, .. } => Some((token, request)),
            _ => None,
        })
        .await;
        tokens.push((token, request));
    }
    // The other four fail at the asker (the server dropped them unanswered) before anything
    // is answered, and the server's owner never sees them.
    let started = tokio::time::Instant::now();
    while asks.iter().filter(|ask| ask.is_finished()).count() < 4 {
        assert!(
            started.elapsed() < DEADLINE,
            "the extra requests were not refused"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (done, waiting): (Vec<_>, Vec<_>) = asks.into_iter().partition(|ask| ask.is_finished());
    assert_eq!(done.len(), 4);
    for ask in done {
        assert!(
            ask.await.expect("task").is_err(),
            "a refused request failed"
        );
    }
    for (token, request) in &tokens {
        server
            .sync_respond(*token, request.clone())
            .await
            .expect("respond");
    }
    let mut echoed = Vec::new();
    for ask in waiting {
        let answer = tokio::time::timeout(DEADLINE, ask)
            .await
            .expect("every request ends in time")
            .expect("task")
            .expect("an accepted request is answered");
        echoed.extend(answer);
    }
    // Each accepted request got its own answer.
    echoed.sort_unstable();
    echoed.dedup();
    assert_eq!(echoed.len(), 8);
    while let Ok(event) = server_events.try_recv() {
        assert!(
            !matches!(event, Event::SyncRequest { .. }),
            "a refused request reached the owner"
        );
    }
}

/// A node and a client connected to it: the node's events, and the node's peer id.
async fn connect(
    client: &Client,
    events: &mut mpsc::Receiver<Event>,
    address: Multiaddr,
) -> PeerId {
    let peer = client.dial(address).await.expect("dial");
    next(events, |event| match event {
        Event::Connected {
            peer: connected, ..
        } if connected == peer => Some(()),
        _ => None,
    })
    .await;
    peer
}

/// Answers every sync request with the request itself, for as long as the node runs.
fn echo_sync_requests(server: Client, mut events: mpsc::Receiver<Event>) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let Event::SyncRequest { token, request, .. } = event {
                let _ = server.sync_respond(token, request).await;
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_over_its_share_waits_for_the_next_second_and_is_not_refused() {
    // One request a second for the whole address: a burst must wait, not fail.
    let (server, mut server_events) =
        start_with(|config| config.sync_requests_per_address = 1).await;
    let address: Multiaddr = next(&mut server_events, |event| match event {
        Event::Listening { address } => Some(address),
        _ => None,
    })
    .await;
    let (first, mut first_events) = start().await;
    let (second, mut second_events) = start().await;
    let server_id = connect(&first, &mut first_events, address.clone()).await;
    connect(&second, &mut second_events, address).await;
    echo_sync_requests(server, server_events);

    // One asker's burst, within its own limits, over its address's: every request is answered.
    let started = tokio::time::Instant::now();
    let burst: Vec<_> = (0..5u8)
        .map(|n| {
            let first = first.clone();
            tokio::spawn(async move { first.queue_sync_request(server_id, vec![n]).await?.await })
        })
        .collect();
    for (n, ask) in burst.into_iter().enumerate() {
        let answer = tokio::time::timeout(DEADLINE, ask)
            .await
            .expect("every request ends in time")
            .expect("task")
            .expect("a request over its address's share waits and is answered");
        assert_eq!(answer, vec![n as u8]);
    }
    // At one a second, the last was handed over at least four seconds after the first.
    assert!(started.elapsed() >= Duration::from_secs(3));

    // Two peers on one address asking for 16 at once: what waits is bounded, so some are
    // refused, and each one that was not refused is answered.
    let asks: Vec<_> = (0..16u8)
        .map(|n| {
            let asker = if n % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tokio::spawn(async move { asker.queue_sync_request(server_id, vec![n]).await?.await })
        })
        .collect();
    let mut answered = 0;
    for ask in asks {
        let outcome = tokio::time::timeout(DEADLINE, ask)
            .await
            .expect("every request ends in time")
            .expect("task");
        answered += usize::from(outcome.is_ok());
    }
    assert!(
        (2..16).contains(&answered),
        "{answered} of 16 requests answered: waiting requests are not bounded per address"
    );
}
