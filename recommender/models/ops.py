"""Operational records: training runs, model versions, update tasks, migrations, rejects."""

from __future__ import annotations

import datetime as dt

from mongoengine import (
    BooleanField,
    DateTimeField,
    DictField,
    Document,
    DynamicField,
    EmbeddedDocument,
    EmbeddedDocumentListField,
    FloatField,
    IntField,
    ObjectIdField,
    StringField,
)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class StepMetadata(EmbeddedDocument):
    name = StringField(required=True)
    status = StringField(default="pending")  # pending | running | completed | failed
    start_time = DateTimeField()
    end_time = DateTimeField()
    duration_s = FloatField()
    details = DictField()


class PipelineMetadata(Document):
    pipeline = StringField(required=True)  # e.g. "AE", "NCF", "RL", "Popularity"
    status = StringField(default="running")  # running | promoted | rejected | failed
    reason = StringField(null=True)
    seed = IntField()
    model_version = IntField(null=True)
    start_time = DateTimeField(default=utcnow)
    end_time = DateTimeField(null=True)
    steps = EmbeddedDocumentListField(StepMetadata)
    metrics = DictField()  # what `evaluate` measured (also when the model was then rejected)
    # The training report's series: tag (e.g. "loss/train") -> [[epoch, value], ...]
    curves = DictField()
    meta = {
        "indexes": [("pipeline", "-start_time"), "-start_time"],
        "ordering": ["-start_time"],
    }


class ModelVersion(Document):
    """One trained model: a state dict (torch.save, in GridFS) plus what rebuilds it."""

    name = StringField(required=True)  # e.g. "ncf", "rl_v1", "user_encoder"
    version = IntField(required=True)
    status = StringField(default="live")  # live | superseded | rejected
    created_at = DateTimeField(default=utcnow)
    config = DictField()
    metrics = DictField()
    file_id = ObjectIdField(null=True)
    size_bytes = IntField(default=0)
    pipeline_metadata = ObjectIdField(null=True)
    meta = {"indexes": [{"fields": ("name", "version"), "unique": True}, ("name", "status")]}


class VersionStamp(Document):
    """A counter bumped when something that serving caches changes (catalogue, models)."""

    name = StringField(primary_key=True)
    version = IntField(default=0)
    updated_at = DateTimeField(default=utcnow)


class UpdateTask(Document):
    """One `POST /update`: its dump and how loading and training went."""

    task_id = StringField(required=True, unique=True)
    status = StringField(default="queued")  # queued | running | succeeded | failed | refused
    step = StringField(null=True)
    reason = StringField(null=True)
    dump_file_id = ObjectIdField(null=True)
    report = DictField()
    created_at = DateTimeField(default=utcnow)
    started_at = DateTimeField(null=True)
    finished_at = DateTimeField(null=True)
    meta = {"indexes": ["-created_at"]}  # the last update (/health, the dashboard)


class Lease(Document):
    """A named lock with an expiry (one update trains at a time; one migration runner)."""

    name = StringField(primary_key=True)
    holder = StringField(required=True)
    expires_at = DateTimeField(required=True)


class Migration(Document):
    name = StringField(required=True, unique=True)
    applied = BooleanField(required=True, default=False)
    checksum = StringField(null=True)
    applied_at = DateTimeField(null=True)


class RejectedMessage(Document):
    """A databus message that could not be stored as a user action, kept with the reason."""

    source = StringField(default="databus")
    destination = StringField(null=True)
    message_id = StringField(null=True)
    body = DynamicField()
    reason = StringField(required=True)
    received_at = DateTimeField(default=utcnow)
