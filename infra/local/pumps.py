"""What Lambda's event source mappings do, done locally: read the Kinesis
stream and the SQS retry queue (moto's, on loopback) and hand the records to
the same handlers, in the events Lambda would build, honouring
``batchItemFailures`` as ``ReportBatchItemFailures`` does."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Callable
from typing import Any

from infra.local.gateway import LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]
REGION = "us-east-1"


class StreamPump:
    def __init__(self, kinesis: Any, stream: str, handler: Handler, *, from_start: bool = True) -> None:
        self._kinesis = kinesis
        self._stream = stream
        self._handler = handler
        self._start = "TRIM_HORIZON" if from_start else "LATEST"
        self._iterators: dict[str, str] = {}
        self._arn = ""
        self.failed = 0
        """Records the last poll left to be handed again (the handler reported them as failed)."""
        self.behind = False
        """The last poll left records unread (a full page, or the shard reported it was behind)."""

    def _shards(self) -> list[str]:
        description = self._kinesis.describe_stream(StreamName=self._stream)["StreamDescription"]
        self._arn = description["StreamARN"]
        return [shard["ShardId"] for shard in description["Shards"]]

    def poll(self) -> int:
        """Hand every new record to the handler once; returns how many records were handled."""
        if not self._iterators:
            for shard in self._shards():
                self._iterators[shard] = self._kinesis.get_shard_iterator(
                    StreamName=self._stream, ShardId=shard, ShardIteratorType=self._start
                )["ShardIterator"]
        handled = failed = 0
        self.behind = False
        for shard, iterator in list(self._iterators.items()):
            reply = self._kinesis.get_records(ShardIterator=iterator, Limit=100)
            records = reply["Records"]
            self.behind |= len(records) >= 100 or int(reply.get("MillisBehindLatest") or 0) > 0
            next_iterator = reply["NextShardIterator"]
            if records:
                event = {"Records": [self._record(shard, r) for r in records]}
                result = self._handler(event, LambdaContext("deliver")) or {}
                failures = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
                if failures:  # start again at the first failed record, as Lambda does
                    next_iterator = self._kinesis.get_shard_iterator(
                        StreamName=self._stream, ShardId=shard, ShardIteratorType="AT_SEQUENCE_NUMBER",
                        StartingSequenceNumber=failures[0],
                    )["ShardIterator"]
                    first_failed = [r["SequenceNumber"] for r in records].index(failures[0])
                    handled += first_failed
                    failed += len(records) - first_failed
                else:
                    handled += len(records)
            self._iterators[shard] = next_iterator
        self.failed = failed
        return handled

    def _record(self, shard: str, record: dict[str, Any]) -> dict[str, Any]:
        arrival = record.get("ApproximateArrivalTimestamp")
        return {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": record["PartitionKey"],
                "sequenceNumber": record["SequenceNumber"],
                "data": base64.b64encode(record["Data"]).decode(),
                "approximateArrivalTimestamp": arrival.timestamp() if arrival else time.time(),
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{shard}:{record['SequenceNumber']}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::123456789012:role/local",
            "awsRegion": REGION,
            "eventSourceARN": self._arn,
        }


class QueuePump:
    def __init__(self, sqs: Any, queue: str, handler: Handler) -> None:
        self._sqs = sqs
        self._url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn", "VisibilityTimeout"])
        self._arn = attributes["Attributes"]["QueueArn"]
        self.visibility_timeout_s = int(attributes["Attributes"].get("VisibilityTimeout", 30))
        """How long a message the last poll left undeleted stays invisible before it is received again."""
        self._handler = handler
        self.failed = 0
        """Messages the last poll left in the queue (the handler reported them as failed)."""

    def poll(self, wait_s: int = 0) -> int:
        reply = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s,
                                          AttributeNames=["All"])
        messages = reply.get("Messages", [])
        self.failed = 0
        if not messages:
            return 0
        event = {"Records": [self._record(m) for m in messages]}
        result = self._handler(event, LambdaContext("retry")) or {}
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] not in failed:
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        self.failed = sum(1 for message in messages if message["MessageId"] in failed)
        return len(messages) - self.failed

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._arn,
            "awsRegion": REGION,
        }


def provision(kinesis: Any, sqs: Any, ses: Any, *, stream: str, queue: str, sender: str) -> None:
    """Create what the deployment's templates create on AWS (idempotent)."""
    with contextlib.suppress(kinesis.exceptions.ResourceInUseException):
        kinesis.create_stream(StreamName=stream, ShardCount=1)
    sqs.create_queue(QueueName=queue)
    ses.verify_email_identity(EmailAddress=sender)
