import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  type ReceiveMessageCommandOutput,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import type { QueueName } from "../../config.js";
import { type DeadLetter, type Delivery, type JobQueue, retryBackoffSeconds } from "./port.js";

interface Envelope {
  id: string;
  body: unknown;
}

/**
 * The job queue on SQS. Each queue has a redrive policy to its dead-letter queue; SQS moves a
 * message there after `maxReceiveCount` receives. `fail` only shortens the visibility to the
 * backoff so the next receive comes after it.
 */
export function sqsJobQueue(opts: {
  urls: Record<QueueName, string>;
  region: string;
  endpoint?: string | undefined;
  client?: SQSClient;
  backoffSeconds?: (attempts: number) => number;
}): JobQueue {
  const client = opts.client ?? new SQSClient({ region: opts.region, endpoint: opts.endpoint });
  const backoff = opts.backoffSeconds ?? ((n: number) => retryBackoffSeconds(n));
  const dlqUrls = new Map<QueueName, Promise<string | null>>();

  const deadLetterUrl = (queue: QueueName) => {
    let url = dlqUrls.get(queue);
    if (!url) {
      url = (async () => {
        const attrs = await client.send(
          new GetQueueAttributesCommand({ QueueUrl: opts.urls[queue], AttributeNames: ["RedrivePolicy"] }),
        );
        const policy = attrs.Attributes?.RedrivePolicy;
        if (!policy) return null;
        const arn = String(JSON.parse(policy).deadLetterTargetArn);
        const name = arn.split(":").pop() ?? "";
        const found = await client.send(new GetQueueUrlCommand({ QueueName: name }));
        return found.QueueUrl ?? null;
      })();
      dlqUrls.set(queue, url);
    }
    return url;
  };

  const count = async (url: string) => {
    const res = await client.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    return {
      visible: Number(res.Attributes?.ApproximateNumberOfMessages ?? 0),
      hidden: Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
    };
  };

  return {
    kind: "sqs",
    async send(queue, id, body, o) {
      const envelope: Envelope = { id, body };
      await client.send(
        new SendMessageCommand({
          QueueUrl: opts.urls[queue],
          MessageBody: JSON.stringify(envelope),
          DelaySeconds: o?.delaySeconds,
        }),
      );
    },
    async receive(queue, o) {
      if (o.signal?.aborted) return [];
      let res: ReceiveMessageCommandOutput;
      try {
        res = await client.send(
          new ReceiveMessageCommand({
            QueueUrl: opts.urls[queue],
            MaxNumberOfMessages: Math.min(10, o.max ?? 1),
            VisibilityTimeout: o.visibilityTimeoutSeconds,
            WaitTimeSeconds: o.waitSeconds ?? 0,
            MessageSystemAttributeNames: ["ApproximateReceiveCount"],
          }),
          { abortSignal: o.signal },
        );
      } catch (err) {
        // A long poll ended by the consumer's shutdown: nothing was handed out to it.
        if (o.signal?.aborted) return [];
        throw err;
      }
      return (res.Messages ?? []).map((m) => {
        const envelope = JSON.parse(m.Body ?? "{}") as Envelope;
        return {
          id: envelope.id,
          body: envelope.body,
          attempts: Number(m.Attributes?.ApproximateReceiveCount ?? 1),
          receipt: m.ReceiptHandle ?? "",
        };
      });
    },
    async ack(queue, d: Delivery) {
      try {
        await client.send(new DeleteMessageCommand({ QueueUrl: opts.urls[queue], ReceiptHandle: d.receipt }));
      } catch (err) {
        // A receipt that is no longer valid means the message is gone or re-leased: nothing to do.
        if ((err as { name?: string }).name !== "ReceiptHandleIsInvalid") throw err;
      }
    },
    async fail(queue, d) {
      await client.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: opts.urls[queue],
          ReceiptHandle: d.receipt,
          VisibilityTimeout: Math.round(backoff(d.attempts)),
        }),
      );
    },
    async extend(queue, d, seconds) {
      await client.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: opts.urls[queue],
          ReceiptHandle: d.receipt,
          VisibilityTimeout: seconds,
        }),
      );
    },
    async deadLetters(queue, max = 10): Promise<DeadLetter[]> {
      const url = await deadLetterUrl(queue);
      if (!url) return [];
      // Peek: a zero visibility timeout leaves the messages in the dead-letter queue.
      const res = await client.send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          MaxNumberOfMessages: Math.min(10, max),
          VisibilityTimeout: 0,
          MessageSystemAttributeNames: ["ApproximateReceiveCount"],
        }),
      );
      return (res.Messages ?? []).map((m) => {
        const envelope = JSON.parse(m.Body ?? "{}") as Envelope;
        return {
          id: envelope.id,
          body: envelope.body,
          attempts: Number(m.Attributes?.ApproximateReceiveCount ?? 0),
          error: null,
        };
      });
    },
    async stats(queue) {
      const main = await count(opts.urls[queue]);
      const url = await deadLetterUrl(queue);
      const dead = url ? await count(url) : { visible: 0, hidden: 0 };
      return { ready: main.visible, inFlight: main.hidden, dead: dead.visible + dead.hidden };
    },
    async ping() {
      await count(opts.urls.generation);
    },
  };
}
