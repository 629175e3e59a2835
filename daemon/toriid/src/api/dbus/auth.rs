//! Who calls: the peer's Unix uid as the bus daemon reports it
//! (`org.freedesktop.DBus.GetConnectionUnixUser`), mapped to a [`Role`]. The policy
//! itself stays in the core ([`crate::command::Command::required_role`]); this only
//! says who the caller is.
//!
//! Operators: uid 0, toriid's own uid, and members of the operators group (primary
//! or supplementary, resolved through NSS at each call, so a change of membership
//! needs no restart). Everyone else is a viewer.

use std::ffi::CString;

use nix::unistd::{Gid, Group, Uid, User};
use zbus::message::Header;
use zbus::names::BusName;

use super::Error;
use crate::command::{Caller, Core, Role};

/// The adapter's name in the audit trail for failures to identify a caller.
const ADAPTER: &str = "dbus";

pub(crate) struct Authorizer {
    /// Always operators.
    trusted_uids: Vec<u32>,
    /// Members are operators; `None`: no group.
    operators_group: Option<String>,
}

impl Authorizer {
    /// Root, toriid's own user, and the members of `operators_group` ("" for none).
    pub(crate) fn new(operators_group: &str) -> Self {
        let mut trusted_uids = vec![0, Uid::current().as_raw()];
        trusted_uids.dedup();
        let operators_group = (!operators_group.is_empty()).then(|| operators_group.to_owned());
        if let Some(group) = &operators_group
            && !matches!(Group::from_name(group), Ok(Some(_)))
        {
            tracing::warn!(group = %group, "D-Bus: the operators group {group} does not exist: only root and toriid's own user are operators on the bus");
        }
        Authorizer {
            trusted_uids,
            operators_group,
        }
    }

    /// An authorizer with explicit trusted uids (tests: one that trusts nobody).
    #[cfg(test)]
    pub(crate) fn with(trusted_uids: Vec<u32>, operators_group: Option<&str>) -> Self {
        Authorizer {
            trusted_uids,
            operators_group: operators_group.map(str::to_owned),
        }
    }

    /// The caller of a method call. A peer the bus cannot identify is refused (and the
    /// failure audited), never treated as a viewer.
    pub(crate) async fn caller(
        &self,
        core: &Core,
        connection: &zbus::Connection,
        header: &Header<'_>,
    ) -> Result<Caller, Error> {
        let Some(sender) = header.sender() else {
            core.authentication_failed(ADAPTER, "a method call without a sender");
            return Err(Error::Forbidden("the caller cannot be identified".into()));
        };
        let uid = match unix_user(connection, sender).await {
            Ok(uid) => uid,
            Err(error) => {
                core.authentication_failed(
                    ADAPTER,
                    &format!("the bus did not tell the uid of {sender}: {error}"),
                );
                return Err(Error::Forbidden("the caller cannot be identified".into()));
            }
        };
        Ok(Caller::new(
            self.role_of(uid).await,
            format!("dbus:uid={uid}"),
        ))
    }

    pub(crate) async fn role_of(&self, uid: u32) -> Role {
        if self.trusted_uids.contains(&uid) {
            return Role::Operator;
        }
        let Some(group) = self.operators_group.clone() else {
            return Role::Viewer;
        };
        // NSS lookups may block (LDAP, sssd).
        match tokio::task::spawn_blocking(move || in_group(uid, &group)).await {
            Ok(Ok(true)) => Role::Operator,
            Ok(Ok(false)) => Role::Viewer,
            Ok(Err(error)) => {
                tracing::warn!(
                    uid,
                    "D-Bus: cannot read the groups of uid {uid}: {error}; treated as a viewer"
                );
                Role::Viewer
            }
            Err(_) => Role::Viewer,
        }
    }
}

/// The uid of a peer, as the bus daemon knows it (from the socket's credentials).
async fn unix_user(
    connection: &zbus::Connection,
    sender: &zbus::names::UniqueName<'_>,
) -> zbus::fdo::Result<u32> {
    // Not kept between calls: a proxy holds its connection, which holds this object.
    let bus = zbus::fdo::DBusProxy::builder(connection)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    bus.get_connection_unix_user(BusName::Unique(sender.to_owned()))
        .await
}

/// Whether the user `uid` is a member of `group` (primary or supplementary). A uid
/// without a user, or a group that does not exist, is no member.
pub(crate) fn in_group(uid: u32, group: &str) -> nix::Result<bool> {
    let Some(group) = Group::from_name(group)? else {
        return Ok(false);
    };
    let Some(user) = User::from_uid(Uid::from_raw(uid))? else {
        return Ok(false);
    };
    if user.gid == group.gid {
        return Ok(true);
    }
    let Ok(name) = CString::new(user.name) else {
        return Ok(false);
    };
    let groups: Vec<Gid> = nix::unistd::getgrouplist(&name, user.gid)?;
    Ok(groups.contains(&group.gid))
}
