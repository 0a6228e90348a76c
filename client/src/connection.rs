//! `Connection`: an open channel to rvirtd, with one method per connection-level RPC; and
//! `Domain`, a handle with one method per domain-level RPC.

use crate::error::{Error, ErrorKind, Result};
use crate::flags::{
    ListFlags, MomentDeleteFlags, RebootFlags, SnapshotListFlags, SnapshotRevertFlags, UndefineFlags,
};
use crate::types::{self, Change, Checkpoint, DomainId, DomainInfo, DomainState, Listing, Snapshot};
use crate::uri::{TlsFiles, Uri};
use hyper_util::rt::TokioIo;
use rvirt_proto::v1::{self, domain_service_client::DomainServiceClient};
use tonic::transport::{Channel, Endpoint};
use uuid::Uuid;

/// The largest gRPC message sent or accepted, set explicitly (tonic's default is 4 MiB); the
/// daemon uses the same bound.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// An open connection to rvirtd. Cheap to clone; clones share the channel.
#[derive(Debug, Clone)]
pub struct Connection {
    client: DomainServiceClient<Channel>,
    channel: Channel,
}

/// A domain handle, as libvirt's virDomainPtr: the connection plus name, uuid and id as they were
/// when the handle was made. Calls name the domain by UUID.
#[derive(Debug, Clone)]
pub struct Domain {
    conn: Connection,
    /// Name, uuid and id when the handle was made.
    pub id: DomainId,
}

/// HTTP/2 settings for large answers: with the default 64 KiB windows, a listing of 10,000
/// domains (about 1 MiB) would stall on flow-control round trips.
fn tuned(endpoint: Endpoint) -> Endpoint {
    endpoint
        .initial_stream_window_size(16 << 20)
        .initial_connection_window_size(32 << 20)
        .max_frame_size(1 << 20)
}

/// An error and its causes, "a: b: c" (tonic's transport error says only "transport error").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Wrappers often repeat their cause's words; say them once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The TLS settings for a connection to `host` with `files` (already resolved).
fn client_tls(host: &str, files: &TlsFiles) -> Result<tonic::transport::ClientTlsConfig> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).map_err(|e| {
            Error::local(ErrorKind::InvalidArg, format!("cannot read the TLS {what} {}: {e}", path.display()))
        })
    };
    let ca = files.ca.as_deref().ok_or_else(|| {
        Error::local(
            ErrorKind::InvalidArg,
            "no CA certificate for tls://: give --tls-ca, set RVIRT_TLS_CA or put it at ~/.pki/rvirt/cacert.pem",
        )
    })?;
    let mut config =
        ClientTlsConfig::new().domain_name(host).ca_certificate(Certificate::from_pem(read(ca, "CA")?));
    match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            config = config.identity(Identity::from_pem(read(cert, "certificate")?, read(key, "key")?));
        }
        (None, None) => {}
        _ => {
            return Err(Error::local(
                ErrorKind::InvalidArg,
                "a TLS client certificate needs its key, and a key its certificate: give both",
            ));
        }
    }
    Ok(config)
}

impl Connection {
    /// The URI used when none is given: `$RVIRT_DEFAULT_URI`, else the default socket.
    pub fn default_uri() -> String {
        std::env::var("RVIRT_DEFAULT_URI")
            .ok()
            .filter(|uri| !uri.is_empty())
            .unwrap_or_else(|| format!("unix://{}", rvirt_proto::default_socket_path().display()))
    }

    /// Opens `unix:///absolute/path[?readonly]`, `tcp://host:port` or `tls://host[:port]` (see
    /// `Uri`), with the TLS files found as `TlsFiles::resolve` says.
    pub async fn open(uri: &str) -> Result<Self> {
        Self::open_with(uri, &TlsFiles::default()).await
    }

    /// `open`, with TLS files given explicitly (each one not given is looked for as
    /// `TlsFiles::resolve` says).
    pub async fn open_with(uri: &str, tls: &TlsFiles) -> Result<Self> {
        let parsed = Uri::parse(uri)?;
        let is_tls = matches!(parsed, Uri::Tls { .. });
        let channel = match parsed {
            Uri::Unix { path, .. } => {
                let connector = tower::service_fn(move |_: tonic::transport::Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
                    }
                });
                // The authority is unused: the connector dials the socket.
                tuned(Endpoint::from_static("http://localhost")).connect_with_connector(connector).await
            }
            Uri::Tcp { address } => {
                let endpoint = Endpoint::from_shared(format!("http://{address}"))
                    .map_err(|e| Error::local(ErrorKind::InvalidArg, format!("bad URI {uri}: {e}")))?;
                tuned(endpoint).tcp_nodelay(true).connect().await
            }
            Uri::Tls { host, port } => {
                let authority =
                    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
                let endpoint = Endpoint::from_shared(format!("https://{authority}"))
                    .map_err(|e| Error::local(ErrorKind::InvalidArg, format!("bad URI {uri}: {e}")))?
                    .tls_config(client_tls(&host, &tls.resolve())?)
                    .map_err(|e| {
                        Error::local(ErrorKind::InvalidArg, format!("TLS settings for {uri}: {e}"))
                    })?;
                tuned(endpoint).tcp_nodelay(true).connect().await
            }
        };
        let channel = channel.map_err(|e| {
            Error::local(
                ErrorKind::Connection,
                format!("failed to connect to {uri}: {}; is rvirtd running?", chain(&e)),
            )
        })?;
        let client = DomainServiceClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let conn = Connection { client, channel };
        if is_tls {
            // With TLS 1.3 a server that refuses the client's certificate says so only after the
            // handshake; ask once, so that shows here, explained, and not as the first call's
            // "operation was canceled".
            if let Err(error) = conn.client.clone().num_of_domains(v1::NumOfDomainsRequest {}).await {
                let explained = format!(
                    "the TLS connection to {uri} was refused ({}); if rvirtd asks for client \
                     certificates, give one its CA signed, not expired, with --tls-cert and --tls-key \
                     (or RVIRT_TLS_CERT, RVIRT_TLS_KEY, ~/.pki/rvirt/clientcert.pem)",
                    error.message()
                );
                return Err(Error::local(ErrorKind::Connection, explained));
            }
        }
        Ok(conn)
    }

    /// The channel itself, for calls by path (a generic gRPC client).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The generated gRPC client on this connection, for fields the typed methods do not expose
    /// (raw flag bits, for instance).
    pub fn rpc(&self) -> DomainServiceClient<Channel> {
        self.client.clone()
    }

    /// virConnectListAllDomains: every matching domain from one snapshot. Follows the pages of a
    /// listing too large for one message; they all come from the same snapshot.
    pub async fn list_all_domains(&self, flags: ListFlags) -> Result<Listing> {
        let request = v1::ListAllDomainsRequest { flags: flags.bits(), ..Default::default() };
        self.list_all_domains_raw(request).await
    }

    /// ListAllDomains from a raw request (raw flag bits, a page size), following every page.
    pub async fn list_all_domains_raw(&self, mut request: v1::ListAllDomainsRequest) -> Result<Listing> {
        let mut domains = Vec::new();
        let mut generation = None;
        loop {
            let page = self.rpc().list_all_domains(request.clone()).await?.into_inner();
            if *generation.get_or_insert(page.generation) != page.generation {
                let message = "the daemon answered pages of one listing from different generations";
                return Err(Error::local(ErrorKind::Internal, message));
            }
            if domains.is_empty() {
                domains.reserve((page.count as usize).min(1 << 20));
            }
            for summary in page.domains {
                domains.push(types::summary(summary)?);
            }
            if page.next_page_token.is_empty() {
                return Ok(Listing { domains, generation: page.generation, incarnation: page.incarnation });
            }
            request.page_token = page.next_page_token;
        }
    }

    /// One ListAllDomains page, as it came (for callers that page themselves).
    pub async fn list_all_domains_page(
        &self,
        request: v1::ListAllDomainsRequest,
    ) -> Result<v1::ListAllDomainsResponse> {
        Ok(self.rpc().list_all_domains(request).await?.into_inner())
    }

    /// Count-only ListAllDomains: the number of matching domains and the generation.
    pub async fn count_all_domains(&self, flags: ListFlags) -> Result<(u64, u64)> {
        let request =
            v1::ListAllDomainsRequest { flags: flags.bits(), count_only: true, ..Default::default() };
        let response = self.rpc().list_all_domains(request).await?.into_inner();
        Ok((response.count, response.generation))
    }

    /// virConnectNumOfDomains.
    pub async fn num_of_domains(&self) -> Result<u32> {
        Ok(self.rpc().num_of_domains(v1::NumOfDomainsRequest {}).await?.into_inner().count)
    }

    /// virConnectListDomains.
    pub async fn list_domains(&self, max_ids: i32) -> Result<Vec<i32>> {
        Ok(self.rpc().list_domains(v1::ListDomainsRequest { max_ids }).await?.into_inner().ids)
    }

    /// virConnectNumOfDefinedDomains.
    pub async fn num_of_defined_domains(&self) -> Result<u32> {
        Ok(self.rpc().num_of_defined_domains(v1::NumOfDefinedDomainsRequest {}).await?.into_inner().count)
    }

    /// virConnectListDefinedDomains.
    pub async fn list_defined_domains(&self, max_names: i32) -> Result<Vec<String>> {
        let request = v1::ListDefinedDomainsRequest { max_names };
        Ok(self.rpc().list_defined_domains(request).await?.into_inner().names)
    }

    /// virDomainLookupByID.
    pub async fn lookup_by_id(&self, id: i32) -> Result<Domain> {
        let response = self.rpc().lookup_domain_by_id(v1::LookupDomainByIdRequest { id }).await?;
        self.handle(response.into_inner())
    }

    /// virDomainLookupByName.
    pub async fn lookup_by_name(&self, name: &str) -> Result<Domain> {
        let request = v1::LookupDomainByNameRequest { name: name.to_owned() };
        self.handle(self.rpc().lookup_domain_by_name(request).await?.into_inner())
    }

    /// virDomainLookupByUUIDString (libvirt's lenient UUID syntax).
    pub async fn lookup_by_uuid_string(&self, uuid: &str) -> Result<Domain> {
        let request = v1::LookupDomainByUuidRequest { uuid: uuid.to_owned() };
        self.handle(self.rpc().lookup_domain_by_uuid(request).await?.into_inner())
    }

    /// virDomainLookupByUUID.
    pub async fn lookup_by_uuid(&self, uuid: Uuid) -> Result<Domain> {
        self.lookup_by_uuid_string(&uuid.to_string()).await
    }

    /// virDomainDefineXMLFlags.
    pub async fn define_xml(&self, xml: &str, flags: u32) -> Result<Change> {
        let request = v1::DomainDefineXmlRequest { xml: xml.to_owned(), flags };
        types::change(self.rpc().domain_define_xml(request).await?.into_inner())
    }

    /// virDomainCreateXML.
    pub async fn create_xml(&self, xml: &str, flags: u32) -> Result<Change> {
        let request = v1::DomainCreateXmlRequest { xml: xml.to_owned(), flags };
        types::change(self.rpc().domain_create_xml(request).await?.into_inner())
    }

    /// A handle from a lookup answer.
    fn handle(&self, response: v1::LookupDomainResponse) -> Result<Domain> {
        Ok(Domain { conn: self.clone(), id: types::domain_id(response.domain)? })
    }

    /// A handle for a domain known by its identity (e.g. from a listing or a change).
    pub fn domain(&self, id: DomainId) -> Domain {
        Domain { conn: self.clone(), id }
    }
}

impl Domain {
    fn uuid(&self) -> String {
        self.id.uuid.to_string()
    }

    fn rpc(&self) -> DomainServiceClient<Channel> {
        self.conn.rpc()
    }

    /// The name when the handle was made.
    pub fn name(&self) -> &str {
        &self.id.name
    }

    /// virDomainCreateWithFlags.
    pub async fn create(&self) -> Result<Change> {
        let request = v1::DomainCreateRequest { uuid: self.uuid(), flags: 0 };
        types::change(self.rpc().domain_create(request).await?.into_inner())
    }

    /// virDomainShutdown.
    pub async fn shutdown(&self) -> Result<Change> {
        let request = v1::DomainShutdownRequest { uuid: self.uuid(), flags: 0 };
        types::change(self.rpc().domain_shutdown(request).await?.into_inner())
    }

    /// virDomainReboot.
    pub async fn reboot(&self, flags: RebootFlags) -> Result<Change> {
        let request = v1::DomainRebootRequest { uuid: self.uuid(), flags: flags.bits() };
        types::change(self.rpc().domain_reboot(request).await?.into_inner())
    }

    /// virDomainReset. Nothing changes on the daemon's side: the answer carries the current
    /// generation and the domain as it is.
    pub async fn reset(&self) -> Result<Change> {
        let request = v1::DomainResetRequest { uuid: self.uuid(), flags: 0 };
        types::change(self.rpc().domain_reset(request).await?.into_inner())
    }

    /// virDomainDestroy.
    pub async fn destroy(&self) -> Result<Change> {
        let request = v1::DomainDestroyRequest { uuid: self.uuid(), flags: 0 };
        types::change(self.rpc().domain_destroy(request).await?.into_inner())
    }

    /// virDomainSuspend.
    pub async fn suspend(&self) -> Result<Change> {
        types::change(
            self.rpc().domain_suspend(v1::DomainSuspendRequest { uuid: self.uuid() }).await?.into_inner(),
        )
    }

    /// virDomainResume.
    pub async fn resume(&self) -> Result<Change> {
        types::change(
            self.rpc().domain_resume(v1::DomainResumeRequest { uuid: self.uuid() }).await?.into_inner(),
        )
    }

    /// virDomainUndefineFlags.
    pub async fn undefine(&self, flags: UndefineFlags) -> Result<Change> {
        let request = v1::DomainUndefineRequest { uuid: self.uuid(), flags: flags.bits() };
        types::change(self.rpc().domain_undefine(request).await?.into_inner())
    }

    /// virDomainManagedSave.
    pub async fn managed_save(&self) -> Result<Change> {
        let request = v1::DomainManagedSaveRequest { uuid: self.uuid(), flags: 0 };
        types::change(self.rpc().domain_managed_save(request).await?.into_inner())
    }

    /// virDomainHasManagedSaveImage.
    pub async fn has_managed_save_image(&self) -> Result<bool> {
        let request = v1::DomainHasManagedSaveImageRequest { uuid: self.uuid(), flags: 0 };
        Ok(self.rpc().domain_has_managed_save_image(request).await?.into_inner().has_managed_save)
    }

    /// virDomainManagedSaveRemove.
    pub async fn managed_save_remove(&self) -> Result<Change> {
        let request = v1::DomainManagedSaveRemoveRequest { uuid: self.uuid(), flags: 0 };
        types::change(self.rpc().domain_managed_save_remove(request).await?.into_inner())
    }

    /// virDomainSetAutostart.
    pub async fn set_autostart(&self, autostart: bool) -> Result<Change> {
        let request = v1::DomainSetAutostartRequest { uuid: self.uuid(), autostart };
        types::change(self.rpc().domain_set_autostart(request).await?.into_inner())
    }

    /// virDomainGetAutostart.
    pub async fn get_autostart(&self) -> Result<bool> {
        let request = v1::DomainGetAutostartRequest { uuid: self.uuid() };
        Ok(self.rpc().domain_get_autostart(request).await?.into_inner().autostart)
    }

    /// virDomainPMSuspendForDuration (target: 0 mem, 1 disk, 2 hybrid).
    pub async fn pm_suspend_for_duration(&self, target: u32, duration: u64) -> Result<Change> {
        let request = v1::DomainPmSuspendForDurationRequest { uuid: self.uuid(), target, duration, flags: 0 };
        types::change(self.rpc().domain_pm_suspend_for_duration(request).await?.into_inner())
    }

    /// virDomainPMWakeup.
    pub async fn pm_wakeup(&self) -> Result<Change> {
        let request = v1::DomainPmWakeupRequest { uuid: self.uuid(), flags: 0 };
        types::change(self.rpc().domain_pm_wakeup(request).await?.into_inner())
    }

    /// virDomainGetState: the state and its reason number.
    pub async fn get_state(&self) -> Result<(DomainState, i32)> {
        let request = v1::DomainGetStateRequest { uuid: self.uuid(), flags: 0 };
        let response = self.rpc().domain_get_state(request).await?.into_inner();
        Ok((types::state(response.state)?, response.reason))
    }

    /// virDomainGetInfo, with the OS type, persistence, autostart and managed save.
    pub async fn get_info(&self) -> Result<DomainInfo> {
        let request = v1::DomainGetInfoRequest { uuid: self.uuid() };
        types::info(self.rpc().domain_get_info(request).await?.into_inner())
    }

    /// virDomainGetXMLDesc.
    pub async fn get_xml_desc(&self, flags: u32) -> Result<String> {
        let request = v1::DomainGetXmlDescRequest { uuid: self.uuid(), flags };
        Ok(self.rpc().domain_get_xml_desc(request).await?.into_inner().xml)
    }

    /// virDomainIsActive.
    pub async fn is_active(&self) -> Result<bool> {
        let request = v1::DomainIsActiveRequest { uuid: self.uuid() };
        Ok(self.rpc().domain_is_active(request).await?.into_inner().active)
    }

    /// virDomainIsPersistent.
    pub async fn is_persistent(&self) -> Result<bool> {
        let request = v1::DomainIsPersistentRequest { uuid: self.uuid() };
        Ok(self.rpc().domain_is_persistent(request).await?.into_inner().persistent)
    }

    /// virDomainSnapshotCreateXML.
    pub async fn snapshot_create_xml(&self, xml: &str, flags: u32) -> Result<Change> {
        let request = v1::DomainSnapshotCreateXmlRequest { uuid: self.uuid(), xml: xml.to_owned(), flags };
        types::change(self.rpc().domain_snapshot_create_xml(request).await?.into_inner())
    }

    /// virDomainListAllSnapshots without flags: every snapshot, in creation order.
    pub async fn list_all_snapshots(&self) -> Result<Vec<Snapshot>> {
        self.list_all_snapshots_with(SnapshotListFlags::empty()).await
    }

    /// virDomainListAllSnapshots: the snapshots `flags` select, in creation order (parents
    /// first, depth first, with TOPOLOGICAL).
    pub async fn list_all_snapshots_with(&self, flags: SnapshotListFlags) -> Result<Vec<Snapshot>> {
        let request = v1::DomainListAllSnapshotsRequest { uuid: self.uuid(), flags: flags.bits() };
        Ok(self.rpc().domain_list_all_snapshots(request).await?.into_inner().snapshots)
    }

    /// virDomainSnapshotNum without flags.
    pub async fn snapshot_num(&self) -> Result<u32> {
        self.snapshot_num_with(SnapshotListFlags::empty()).await
    }

    /// virDomainSnapshotNum: how many snapshots `flags` select.
    pub async fn snapshot_num_with(&self, flags: SnapshotListFlags) -> Result<u32> {
        let request = v1::DomainSnapshotNumRequest { uuid: self.uuid(), flags: flags.bits() };
        Ok(self.rpc().domain_snapshot_num(request).await?.into_inner().count)
    }

    /// virDomainRevertToSnapshot.
    pub async fn revert_to_snapshot(&self, name: &str, flags: SnapshotRevertFlags) -> Result<Change> {
        let request = v1::DomainRevertToSnapshotRequest {
            uuid: self.uuid(),
            name: name.to_owned(),
            flags: flags.bits(),
        };
        types::change(self.rpc().domain_revert_to_snapshot(request).await?.into_inner())
    }

    /// virDomainSnapshotLookupByName.
    pub async fn snapshot_lookup_by_name(&self, name: &str) -> Result<Snapshot> {
        let request =
            v1::DomainSnapshotLookupByNameRequest { uuid: self.uuid(), name: name.to_owned(), flags: 0 };
        types::snapshot(self.rpc().domain_snapshot_lookup_by_name(request).await?.into_inner().snapshot)
    }

    /// virDomainSnapshotCurrent: `ErrorKind::NoSnapshot` when there is none.
    pub async fn snapshot_current(&self) -> Result<Snapshot> {
        let request = v1::DomainSnapshotCurrentRequest { uuid: self.uuid(), flags: 0 };
        types::snapshot(self.rpc().domain_snapshot_current(request).await?.into_inner().snapshot)
    }

    /// virDomainHasCurrentSnapshot.
    pub async fn has_current_snapshot(&self) -> Result<bool> {
        let request = v1::DomainHasCurrentSnapshotRequest { uuid: self.uuid(), flags: 0 };
        Ok(self.rpc().domain_has_current_snapshot(request).await?.into_inner().has_current_snapshot)
    }

    /// virDomainSnapshotGetXMLDesc (flags: `flags::SNAPSHOT_XML_SECURE`).
    pub async fn snapshot_get_xml_desc(&self, name: &str, flags: u32) -> Result<String> {
        let request = v1::DomainSnapshotGetXmlDescRequest { uuid: self.uuid(), name: name.to_owned(), flags };
        Ok(self.rpc().domain_snapshot_get_xml_desc(request).await?.into_inner().xml)
    }

    /// virDomainSnapshotGetParent: `ErrorKind::NoSnapshot` for a root snapshot.
    pub async fn snapshot_get_parent(&self, name: &str) -> Result<Snapshot> {
        let request =
            v1::DomainSnapshotGetParentRequest { uuid: self.uuid(), name: name.to_owned(), flags: 0 };
        types::snapshot(self.rpc().domain_snapshot_get_parent(request).await?.into_inner().snapshot)
    }

    /// virDomainSnapshotIsCurrent.
    pub async fn snapshot_is_current(&self, name: &str) -> Result<bool> {
        let request =
            v1::DomainSnapshotIsCurrentRequest { uuid: self.uuid(), name: name.to_owned(), flags: 0 };
        Ok(self.rpc().domain_snapshot_is_current(request).await?.into_inner().current)
    }

    /// virDomainSnapshotHasMetadata.
    pub async fn snapshot_has_metadata(&self, name: &str) -> Result<bool> {
        let request =
            v1::DomainSnapshotHasMetadataRequest { uuid: self.uuid(), name: name.to_owned(), flags: 0 };
        Ok(self.rpc().domain_snapshot_has_metadata(request).await?.into_inner().has_metadata)
    }

    /// virDomainSnapshotListAllChildren: `name`'s children (every descendant with DESCENDANTS)
    /// that `flags` select.
    pub async fn snapshot_list_all_children(
        &self,
        name: &str,
        flags: SnapshotListFlags,
    ) -> Result<Vec<Snapshot>> {
        let request = v1::DomainSnapshotListAllChildrenRequest {
            uuid: self.uuid(),
            name: name.to_owned(),
            flags: flags.bits(),
        };
        Ok(self.rpc().domain_snapshot_list_all_children(request).await?.into_inner().snapshots)
    }

    /// virDomainSnapshotNumChildren.
    pub async fn snapshot_num_children(&self, name: &str, flags: SnapshotListFlags) -> Result<u32> {
        let request = v1::DomainSnapshotNumChildrenRequest {
            uuid: self.uuid(),
            name: name.to_owned(),
            flags: flags.bits(),
        };
        Ok(self.rpc().domain_snapshot_num_children(request).await?.into_inner().count)
    }

    /// virDomainSnapshotDelete.
    pub async fn snapshot_delete(&self, name: &str, flags: MomentDeleteFlags) -> Result<Change> {
        let request =
            v1::DomainSnapshotDeleteRequest { uuid: self.uuid(), name: name.to_owned(), flags: flags.bits() };
        types::change(self.rpc().domain_snapshot_delete(request).await?.into_inner())
    }

    /// virDomainCheckpointCreateXML.
    pub async fn checkpoint_create_xml(&self, xml: &str, flags: u32) -> Result<Change> {
        let request = v1::DomainCheckpointCreateXmlRequest { uuid: self.uuid(), xml: xml.to_owned(), flags };
        types::change(self.rpc().domain_checkpoint_create_xml(request).await?.into_inner())
    }

    /// virDomainListAllCheckpoints, in creation order.
    pub async fn list_all_checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let request = v1::DomainListAllCheckpointsRequest { uuid: self.uuid(), flags: 0 };
        Ok(self.rpc().domain_list_all_checkpoints(request).await?.into_inner().checkpoints)
    }

    /// virDomainCheckpointDelete.
    pub async fn checkpoint_delete(&self, name: &str, flags: MomentDeleteFlags) -> Result<Change> {
        let request = v1::DomainCheckpointDeleteRequest {
            uuid: self.uuid(),
            name: name.to_owned(),
            flags: flags.bits(),
        };
        types::change(self.rpc().domain_checkpoint_delete(request).await?.into_inner())
    }
}
