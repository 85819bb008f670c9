//! REST records (`palaver_protocol::rest`) in their protobuf spelling: the
//! same fields under the same names.

use palaver_protocol::rest;

use crate::v1;

pub fn user(user: &rest::User) -> v1::User {
    v1::User {
        id: user.id,
        username: user.username.clone().unwrap_or_default(),
        display_name: user.display_name.clone(),
        created_at: user.created_at.clone(),
        deleted: user.deleted,
    }
}

pub fn room(room: &rest::Room) -> v1::Room {
    v1::Room {
        id: room.id,
        name: room.name.clone(),
        code: room.code.clone(),
        owner_id: room.owner_id,
        created_at: room.created_at.clone(),
        has_password: room.has_password,
        kind: room.kind.clone(),
    }
}

pub fn message(message: &rest::Message) -> v1::Message {
    v1::Message {
        room_id: message.room_id,
        seq: message.seq,
        sender_id: message.sender_id,
        body: message.body.clone(),
        created_at: message.created_at.clone(),
        client_id: message.client_id.clone(),
        reply_to: message.reply_to,
        edited_at: message.edited_at.clone(),
        deleted: message.deleted,
        reactions: (message.reactions.iter())
            .map(|count| v1::ReactionCount {
                emoji: count.emoji.clone(),
                count: count.count,
                me: count.me,
            })
            .collect(),
        attachments: message
            .attachments
            .iter()
            .cloned()
            .map(attachment)
            .collect(),
    }
}

pub fn attachment(attachment: rest::attachments::Attachment) -> v1::Attachment {
    v1::Attachment {
        id: attachment.id,
        name: attachment.name,
        size: attachment.size,
        content_type: attachment.content_type,
        sha256: attachment.sha256,
        width: attachment.width,
        height: attachment.height,
    }
}

/// `attachment` read back.
pub fn attachment_back(attachment: v1::Attachment) -> rest::attachments::Attachment {
    rest::attachments::Attachment {
        id: attachment.id,
        name: attachment.name,
        size: attachment.size,
        content_type: attachment.content_type,
        sha256: attachment.sha256,
        width: attachment.width,
        height: attachment.height,
    }
}

pub fn room_summary(summary: &rest::RoomSummary) -> v1::RoomSummary {
    v1::RoomSummary {
        room: Some(room(&summary.room)),
        role: summary.role.clone(),
        last_seq: summary.last_seq,
        last_message: summary.last_message.as_ref().map(message),
        last_read_seq: summary.last_read_seq,
        unread_count: summary.unread_count,
        unread_mentions: summary.unread_mentions,
    }
}

pub fn member(member: &rest::Member) -> v1::Member {
    v1::Member {
        user: Some(user(&member.user)),
        role: member.role.clone(),
        joined_at: member.joined_at.clone(),
        online: member.online,
        last_seen: member.last_seen.clone(),
    }
}
