//! Who publishes: `init`, `whoami`, `rename`, `member` and `profile`.

use anyhow::Result;
use cairn_api::Signing;
use serde::Serialize;

use super::entries::print_entry;
use super::{print_json, print_or_json};
use crate::backend;
use crate::cli::{InitArgs, MemberAction, ProfileAction};
use crate::client::NodeClient;
use crate::home::Home;
use crate::output::say;
use crate::render;

#[derive(Serialize)]
struct WhoamiView {
    org: String,
    org_name: String,
    member: String,
    member_name: String,
    home: String,
    entries: usize,
}

pub(super) fn init(home: &Home, args: &InitArgs, json: bool) -> Result<()> {
    let org_name = args.org.trim();
    let member_name = match &args.name {
        Some(name) => name.trim().to_string(),
        None => format!("Member of {org_name}"),
    };
    let identity = home.init(org_name, &member_name)?;
    // The inception goes into the store now: entries are accepted only under a held log.
    crate::backend::local(home, "a new home's store takes its inception first")?
        .publish_key_log()?;
    let claims = identity.credential.claims();
    if json {
        return print_json(&WhoamiView {
            org: claims.org.to_string(),
            org_name: claims.org_name.clone(),
            member: claims.member.to_string(),
            member_name: claims.member_name.clone(),
            home: home.root().display().to_string(),
            entries: 0,
        });
    }
    say!("Created a Cairn identity in {}", home.root().display());
    say!();
    say!("  organisation  {}", claims.org_name);
    say!("  org id        {}", claims.org);
    say!("  you           {}", claims.member_name);
    say!("  member id     {}", claims.member);
    say!();
    say!(
        "Back up {} : the keys in it cannot be recovered.",
        home.root().join("keys").display()
    );
    super::keys::next_key_advice(home);
    say!();
    say!("Next, try:");
    say!(
        "  cairn publish --kind learning --title \"What we learned\" --summary \"In plain words...\""
    );
    say!("  cairn list");
    say!("  cairn whoami");
    Ok(())
}

pub(super) fn whoami(home: &Home, json: bool) -> Result<()> {
    let identity = home.load()?;
    let entries = backend::open(home)?.count()?;
    let claims = identity.credential.claims();
    let view = WhoamiView {
        org: claims.org.to_string(),
        org_name: claims.org_name.clone(),
        member: claims.member.to_string(),
        member_name: claims.member_name.clone(),
        home: home.root().display().to_string(),
        entries,
    };
    if json {
        return print_json(&view);
    }
    say!("{}, member of {}", view.member_name, view.org_name);
    say!("  member id  {}", view.member);
    say!("  org id     {}", view.org);
    say!("  home       {}", view.home);
    say!("  entries    {} in the local store", view.entries);
    Ok(())
}

pub(super) fn rename(home: &Home, org: Option<&str>, name: Option<&str>, json: bool) -> Result<()> {
    let identity = home.rename(org, name)?;
    let claims = identity.credential.claims();
    print_or_json(
        json,
        &serde_json::json!({"org_name": claims.org_name, "member_name": claims.member_name}),
        || {
            say!(
                "From now on you publish as {} of {}.",
                claims.member_name,
                claims.org_name
            );
            if NodeClient::find(home).ok().flatten().is_some() {
                say!("Restart the running node so that it uses the new names.");
            }
        },
    )
}

pub(super) fn member(home: &Home, action: MemberAction, json: bool) -> Result<()> {
    match action {
        MemberAction::Add { name } => {
            let view = backend::open(home)?.add_member(&name)?;
            if json {
                return print_json(&view);
            }
            say!("Added {} (member id {}).", view.name, view.member);
            say!(
                "They publish with `cairn publish --as \"{}\" ...`.",
                view.name
            );
            Ok(())
        }
        MemberAction::List => {
            let members = backend::open(home)?.members()?;
            if json {
                return print_json(&members);
            }
            if members.is_empty() {
                say!("No members added yet. Add one with `cairn member add NAME`.");
            }
            for member in &members {
                match member.revoked_after {
                    Some(seq) => say!(
                        "{}  {}  (revoked; entries after number {seq} are refused)",
                        member.member,
                        member.name
                    ),
                    None => say!("{}  {}", member.member, member.name),
                }
            }
            Ok(())
        }
        MemberAction::Invite {
            name,
            admin,
            on_behalf,
        } => {
            let invitation: cairn_api::MemberInviteView = NodeClient::require(home)?.post(
                "/api/members/invite",
                &cairn_api::InviteMemberRequest {
                    name,
                    admin,
                    on_behalf,
                },
            )?;
            if json {
                return print_json(&invitation);
            }
            say!(
                "Invitation for {} ({}), working once until {}:",
                render::field(&invitation.name),
                invitation.role,
                invitation.expires
            );
            say!("  {}", invitation.url);
            if let Some(fingerprint) = &invitation.fingerprint {
                say!(
                    "Their browser will not know the page's certificate. Tell them it is safe to go on only if its SHA-256 fingerprint is:"
                );
                say!("  {fingerprint}");
            }
            say!("Pass the link on privately: whoever opens it first sets the passphrase.");
            Ok(())
        }
        MemberAction::Revoke { name, reason } => {
            let entry = backend::open(home)?.revoke(&name, reason.unwrap_or_default())?;
            if json {
                return print_entry(&entry, json);
            }
            say!(
                "Revoked {name}: every node that receives revocation {} refuses their later entries.",
                entry.id().short(12)
            );
            Ok(())
        }
    }
}

pub(super) fn profile(home: &Home, action: ProfileAction, json: bool) -> Result<()> {
    match action {
        ProfileAction::Set {
            org,
            as_member,
            about,
            website,
            contact,
        } => {
            let profile = cairn_core::Profile {
                about,
                website,
                contact,
            };
            let signing = Signing {
                as_member,
                on_behalf: org,
            };
            let entry = backend::open(home)?.set_profile(profile, signing)?;
            print_entry(&entry, json)
        }
        ProfileAction::Show { id } => {
            let author = match &id {
                Some(id) => id.trim().to_string(),
                None => home.load()?.credential.org_key().to_string(),
            };
            let view = backend::open(home)?.profile(&author)?;
            if json {
                return print_json(&view);
            }
            match view {
                None => say!("No profile from {author} yet. Publish one with `cairn profile set`."),
                Some(view) => {
                    say!("{} (updated {})", render::field(&view.name), view.updated);
                    if !view.about.is_empty() {
                        say!("  {}", render::field(&view.about));
                    }
                    if !view.website.is_empty() {
                        say!("  website  {}", render::field(&view.website));
                    }
                    if !view.contact.is_empty() {
                        say!("  contact  {}", render::field(&view.contact));
                    }
                }
            }
            Ok(())
        }
    }
}

/// `cairn backup FILE`.
pub(super) fn backup(
    home: &Home,
    file: &std::path::Path,
    passphrase_file: Option<&std::path::Path>,
    json: bool,
) -> Result<()> {
    let passphrase = crate::backup::passphrase(passphrase_file, true)?;
    let files = crate::backup::backup(home, file, passphrase)?;
    let view = serde_json::json!({ "file": file.display().to_string(), "files": files });
    print_or_json(json, &view, || {
        say!(
            "Wrote an encrypted backup of {files} files to {}. Keep it and its passphrase apart, away from this computer: with both, anyone can act as your organisation.",
            file.display()
        );
    })
}

/// `cairn restore FILE` into a new home, or `cairn restore --confirm`.
pub(super) fn restore(
    home: &Home,
    file: Option<&std::path::Path>,
    passphrase_file: Option<&std::path::Path>,
    confirm: bool,
    json: bool,
) -> Result<()> {
    if confirm {
        if crate::client::NodeClient::find(home)?.is_some() {
            anyhow::bail!(
                "the node is running; it allows publishing once it has caught up with a peer. To confirm without waiting, stop it first"
            );
        }
        home.confirm_restore()?;
        let view = serde_json::json!({ "publishing": true });
        return print_or_json(json, &view, || {
            say!("Publishing is allowed again from this home.");
        });
    }
    let Some(file) = file else {
        anyhow::bail!("name the backup file to restore");
    };
    let passphrase = crate::backup::passphrase(passphrase_file, false)?;
    let org = crate::backup::restore(home, file, passphrase)?;
    let view = serde_json::json!({ "org": org, "home": home.root().display().to_string() });
    print_or_json(json, &view, || {
        say!(
            "Restored organisation {org} into {}. This is a new node: start it with a peer (`cairn node --peer ADDRESS`); publishing waits until it has caught up with your organisation's entries.",
            home.root().display()
        );
    })
}
