//! Paged ListAllDomains: pages bounded by count and by bytes, all cut from one retained snapshot;
//! tokens bound to the snapshot, position, flags and caller; altered or foreign tokens refused,
//! expired ones refused with a clear error; the client follows pages by itself.

use rvirt::proto::ListAllDomainsRequest;
use rvirt::{Connection, ListFlags};
use rvirt_tests::{domain_xml, start_daemon_with};
use std::collections::BTreeSet;
use tonic::Code;

async fn populate(conn: &Connection, n: u32) {
    for i in 0..n {
        conn.define_xml(&domain_xml(&format!("d{i:05}"), i), 0).await.unwrap();
    }
}

fn request(page_size: u32, page_token: String) -> ListAllDomainsRequest {
    ListAllDomainsRequest { flags: 0, count_only: false, page_size, page_token }
}

#[tokio::test]
async fn pages_come_from_one_snapshot_and_add_up_to_the_listing() {
    let daemon = start_daemon_with(|_| {}).await;
    let conn = &daemon.client;
    populate(conn, 2_500).await;
    let mut token = String::new();
    let (mut names, mut generations, mut pages) = (Vec::new(), BTreeSet::new(), 0);
    loop {
        let page = conn.list_all_domains_page(request(1_000, token)).await.unwrap();
        assert_eq!(page.count, 2_500);
        pages += 1;
        generations.insert(page.generation);
        names.extend(page.domains.iter().map(|d| d.name.clone()));
        // Changes between pages do not show up in this listing.
        conn.define_xml(&domain_xml(&format!("late{pages}"), 90_000 + pages), 0).await.unwrap();
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(generations.len(), 1, "every page from the same snapshot");
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!((names.len(), unique.len()), (2_500, 2_500));
    assert!(names.iter().all(|n| n.starts_with('d')));
    // The client library follows the pages itself.
    let whole = conn.list_all_domains(ListFlags::empty()).await.unwrap();
    assert_eq!(whole.domains.len(), 2_503);
    daemon.stop().await;
}

#[tokio::test]
async fn pages_are_cut_to_fit_the_message_limit() {
    let daemon = start_daemon_with(|config| config.max_message_bytes = 128 << 10).await;
    let conn = &daemon.client;
    populate(conn, 3_000).await;
    let first = conn.list_all_domains_page(request(0, String::new())).await.unwrap();
    assert!(!first.next_page_token.is_empty(), "3,000 domains do not fit in 128 KiB");
    assert!(first.domains.len() < 3_000 && !first.domains.is_empty());
    let whole = conn.list_all_domains(ListFlags::INACTIVE).await.unwrap();
    assert_eq!(whole.domains.len(), 3_000);
    daemon.stop().await;
}

#[tokio::test]
async fn altered_foreign_and_expired_tokens_are_refused() {
    let daemon = start_daemon_with(|_| {}).await;
    let conn = &daemon.client;
    populate(conn, 30).await;
    let first = conn.list_all_domains_page(request(10, String::new())).await.unwrap();
    let token = first.next_page_token.clone();
    // Altered: one character changed.
    let mut altered = token.clone().into_bytes();
    altered[5] = if altered[5] == b'a' { b'b' } else { b'a' };
    let err = conn.list_all_domains_page(request(10, String::from_utf8(altered).unwrap())).await.unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument, "{}", err.message);
    // Other flags.
    let other_flags = ListAllDomainsRequest { flags: 2, ..request(10, token.clone()) };
    let err = conn.list_all_domains_page(other_flags).await.unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument, "{}", err.message);
    // Another caller: the token was issued over the unix socket, here it comes over TCP.
    let tcp = Connection::open(daemon.tcp_uri.as_ref().unwrap()).await.unwrap();
    let err = tcp.list_all_domains_page(request(10, token.clone())).await.unwrap_err();
    assert_eq!(err.code, Code::InvalidArgument, "{}", err.message);
    // Still good for its owner.
    let second = conn.list_all_domains_page(request(10, token.clone())).await.unwrap();
    assert_eq!((second.domains.len(), second.generation), (10, first.generation));
    // Expired: enough newer paged listings push its snapshot out.
    for i in 0..20 {
        conn.define_xml(&domain_xml(&format!("x{i}"), 500 + i), 0).await.unwrap();
        conn.list_all_domains_page(request(10, String::new())).await.unwrap();
    }
    let err = conn.list_all_domains_page(request(10, token)).await.unwrap_err();
    assert_eq!(err.code, Code::FailedPrecondition);
    assert!(err.message.contains("list again"), "{}", err.message);
    daemon.stop().await;
}
