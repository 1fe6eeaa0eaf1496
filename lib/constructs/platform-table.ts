import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, type ITable, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { TABLE_KEY, TTL_ATTRIBUTE } from '../../contract/tables';

export interface PlatformTableProps {
  /**
   * Customer-managed key for encryption at rest (a silo tenant's own key).
   * @default - the AWS-managed DynamoDB key (`alias/aws/dynamodb`)
   */
  readonly encryptionKey?: IKey;
  /**
   * Local secondary indexes: the same partition key (so `dynamodb:LeadingKeys` still scopes them)
   * with another string attribute as sort key.
   * @default - none
   */
  readonly localSecondaryIndexes?: readonly { readonly indexName: string; readonly sortKey: string }[];
  /**
   * What happens to the table when the stack is deleted.
   * @default RemovalPolicy.RETAIN - tenant data outlives the stack
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Whether DynamoDB refuses to delete the table until this is turned off.
   * @default false
   */
  readonly deletionProtection?: boolean;
}

/**
 * A platform table: `pk`/`sk` strings (pk = `TENANT#<id>` for tenant data, so `dynamodb:LeadingKeys`
 * can scope access), on-demand, point-in-time recovery, encrypted at rest, items expiring by TTL on
 * `expiresAt`.
 */
export class PlatformTable extends Construct {
  public readonly table: ITable;
  /** Names of its local secondary indexes. */
  public readonly indexNames: readonly string[];

  constructor(scope: Construct, id: string, props: PlatformTableProps = {}) {
    super(scope, id);
    const table = new Table(this, 'Table', {
      partitionKey: { name: TABLE_KEY.partitionKey, type: AttributeType.STRING },
      sortKey: { name: TABLE_KEY.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: props.encryptionKey ? TableEncryption.CUSTOMER_MANAGED : TableEncryption.AWS_MANAGED,
      encryptionKey: props.encryptionKey,
      // Every table's items may expire (reservations, audit records, sessions, cache entries, stored
      // responses, budget marks): TTL on all, so none is kept forever for want of the setting.
      timeToLiveAttribute: TTL_ATTRIBUTE,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      deletionProtection: props.deletionProtection ?? false,
    });
    for (const index of props.localSecondaryIndexes ?? []) {
      table.addLocalSecondaryIndex({
        indexName: index.indexName,
        sortKey: { name: index.sortKey, type: AttributeType.STRING },
      });
    }
    this.table = table;
    this.indexNames = (props.localSecondaryIndexes ?? []).map((index) => index.indexName);
  }
}
