//! Domain records → REST bodies: what clients are shown of them.

use palaver_domain::keys::{PublicKey, PublicMaterial};
use palaver_domain::messages::{reactions, HistoryPage};
use palaver_domain::model::{Account, Member, Message, Room, RoomProfile, RoomSummary, User};
use palaver_domain::store::{Invitation, ReactionCount, SessionRecord};
use palaver_domain::time::Timestamp;
use palaver_protocol::rest;

pub fn user(user: &User) -> rest::User {
    rest::User {
        id: user.id.0,
        username: (!user.deleted).then(|| user.username.clone()),
        display_name: user.display_name.clone(),
        created_at: user.created_at.to_rfc3339(),
        deleted: user.deleted,
    }
}

/// `current`: the id of the login making the request.
pub fn session(session: &SessionRecord, current: &str) -> rest::SessionInfo {
    rest::SessionInfo {
        id: session.id.clone(),
        created_at: session.created_at.to_rfc3339(),
        last_used_at: session.last_used_at.to_rfc3339(),
        user_agent: session.user_agent.clone(),
        current: session.id == current,
    }
}

pub fn jwk(key: &PublicKey) -> rest::Jwk {
    let (kty, crv, x, n, e) = match &key.material {
        PublicMaterial::Ed25519 { x } => ("OKP", Some("Ed25519"), Some(x), None, None),
        PublicMaterial::Rsa { n, e } => ("RSA", None, None, Some(n), Some(e)),
    };
    rest::Jwk {
        kty: kty.into(),
        kid: key.kid.clone(),
        alg: key.algorithm.jose_name().into(),
        use_: "sig".into(),
        crv: crv.map(Into::into),
        x: x.cloned(),
        n: n.cloned(),
        e: e.cloned(),
    }
}

pub fn account(account: &Account) -> rest::Account {
    let user = &account.user;
    rest::Account {
        id: user.id.0,
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        created_at: user.created_at.to_rfc3339(),
        email: account.email.clone(),
        email_verified: account.email_verified,
    }
}

pub fn room(room: &Room) -> rest::Room {
    room_profile(&room.profile())
}

pub fn invitation(invitation: &Invitation) -> rest::InvitationInfo {
    rest::InvitationInfo {
        room: invitation.room_id.0,
        room_name: invitation.room_name.clone(),
        by: invitation.by.0,
        created_at: invitation.created_at.to_rfc3339(),
    }
}

pub fn room_profile(room: &RoomProfile) -> rest::Room {
    rest::Room {
        id: room.id.0,
        name: room.name.clone(),
        code: room.code.clone(),
        owner_id: room.owner_id.0,
        created_at: room.created_at.to_rfc3339(),
        has_password: room.has_password,
        kind: room.kind.as_str().to_owned(),
    }
}

pub fn room_summary(summary: &RoomSummary) -> rest::RoomSummary {
    rest::RoomSummary {
        room: room(&summary.room),
        role: summary.role.as_str().to_owned(),
        last_seq: summary.last_seq,
        last_message: summary.last_message.as_ref().map(message),
        last_read_seq: summary.last_read_seq,
        unread_count: summary.unread_count,
        unread_mentions: summary.unread_mentions,
    }
}

/// `online` is this node's presence view, which the domain does not hold.
pub fn member(member: &Member, online: bool) -> rest::Member {
    rest::Member {
        user: user(&member.user),
        role: member.role.as_str().to_owned(),
        joined_at: member.joined_at.to_rfc3339(),
        online,
        last_seen: member.last_seen.map(Timestamp::to_rfc3339),
    }
}

pub fn message(message: &Message) -> rest::Message {
    message_with_reactions(message, &[])
}

/// A message of a history page, with its reactions as the reader sees them
/// (`counts`: this message's).
pub fn message_with_reactions(message: &Message, counts: &[ReactionCount]) -> rest::Message {
    rest::Message {
        room_id: message.room_id.0,
        seq: message.seq,
        sender_id: message.sender_id.0,
        body: message.body.clone(),
        created_at: message.created_at.to_rfc3339(),
        client_id: message.client_id.clone(),
        reply_to: message.reply_to,
        edited_at: message.edited_at.map(Timestamp::to_rfc3339),
        deleted: message.deleted_at.is_some(),
        reactions: reaction_counts(counts),
        attachments: message.attachments.iter().map(attachment).collect(),
    }
}

/// A history page's messages, each with its reactions.
pub fn history(page: &HistoryPage) -> Vec<rest::Message> {
    (page.messages.iter())
        .map(|m| message_with_reactions(m, reactions::counts_for(&page.reactions, m.seq)))
        .collect()
}

pub fn reaction_counts(counts: &[ReactionCount]) -> Vec<rest::ReactionCount> {
    (counts.iter())
        .map(|count| rest::ReactionCount {
            emoji: count.emoji.clone(),
            count: count.count,
            me: count.mine,
        })
        .collect()
}

pub fn mention_page(page: &palaver_domain::messages::MentionPage) -> rest::mentions::MentionPage {
    rest::mentions::MentionPage {
        mentions: (page.mentions.iter())
            .map(|mention| rest::mentions::MentionItem {
                message: message(&mention.message),
                room_name: mention.room_name.clone(),
            })
            .collect(),
        next: page.next.clone(),
    }
}

pub fn attachment(
    attachment: &palaver_domain::attachments::Attachment,
) -> rest::attachments::Attachment {
    rest::attachments::Attachment {
        id: attachment.id.clone(),
        name: attachment.name.clone(),
        size: attachment.size,
        content_type: attachment.content_type.clone(),
        sha256: attachment.sha256.clone(),
        width: attachment.width,
        height: attachment.height,
    }
}
