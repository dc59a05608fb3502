// Names for the server's models, from the generated OpenAPI types (src/schema.ts).
import type { components, paths } from "./schema.js";

type Schemas = components["schemas"];

/** An answer as the server sends it: every field present (a field may still be null).
 * The schema marks fields with a default optional, which is right for request bodies;
 * the server writes every field of an answer. */
export type Answer<T> = T extends readonly (infer U)[]
  ? Answer<U>[]
  : T extends object
    ? { [K in keyof T]-?: Answer<T[K]> }
    : T;

/** The query parameters of a GET route. */
type Query<P extends keyof paths> = paths[P] extends { get: { parameters: { query?: infer Q } } }
  ? NonNullable<Q>
  : never;

/** The JSON body of a POST route whose schema is written inline (no component). */
type PostBody<P extends keyof paths> = paths[P] extends {
  post: { requestBody?: { content: { "application/json": infer B } } };
}
  ? B
  : never;

export type Episode = Answer<Schemas["Episode"]>;
export type EpisodeCreate = Schemas["EpisodeCreateBody"];
export type EpisodeUpdate = Schemas["EpisodeUpdate"];
export type EpisodeList = Answer<Schemas["EpisodeList"]>;
export type BatchCreated = Answer<Schemas["BatchCreated"]>;
export type OnConflict = NonNullable<Schemas["BatchCreate"]["on_conflict"]>;
export type RecallRequest = Schemas["RecallRequest"];
export type RecallResult = Answer<Schemas["RecallResult"]>;
export type EpisodeListQuery = Query<"/api/v1/episodes">;

export type Entity = Answer<Schemas["Entity"]>;
export type EntityCreate = Schemas["EntityCreate"];
export type EntityUpdate = Schemas["EntityUpdate"];
export type EntitySupersede = Schemas["EntitySupersede"];
export type EntityList = Answer<Schemas["EntityList"]>;
export type EntityHistory = Answer<Schemas["EntityHistory"]>;
export type EntityRecallRequest = Schemas["EntityRecallRequest"];
export type EntityRecallResult = Answer<Schemas["EntityRecallResult"]>;
export type EntityListQuery = Query<"/api/v1/entities">;
export type SpreadRequest = Schemas["SpreadRequest"];
export type SpreadResult = Answer<Schemas["SpreadResult"]>;
export type Relation = Answer<Schemas["Relation"]>;
export type RelationCreate = Schemas["RelationCreate"];
export type RelationList = Answer<Schemas["RelationList"]>;

export type Skill = Answer<Schemas["Skill"]>;
export type SkillCreate = Schemas["SkillCreate"];
export type SkillUpdate = Schemas["SkillUpdate"];
export type SkillList = Answer<Schemas["SkillList"]>;
export type SkillVersions = Answer<Schemas["SkillVersions"]>;
export type SkillRecallRequest = Schemas["SkillRecallRequest"];
export type SkillRecallResult = Answer<Schemas["SkillRecallResult"]>;
export type SkillListQuery = Query<"/api/v1/skills">;
export type HowToRequest = Schemas["HowToRequest"];
export type HowTo = Answer<Schemas["HowTo"]>;
export type SkillExecutionCreate = Schemas["SkillExecutionCreate"];
export type SkillExecutionResult = Answer<Schemas["SkillExecutionResult"]>;
export type SkillDeprecate = Schemas["SkillDeprecate"];
export type ExecutionList = Answer<Schemas["ExecutionList"]>;

export type UnifiedRecallRequest = Schemas["UnifiedRecallRequest"];
export type UnifiedRecallResult = Answer<Schemas["UnifiedRecallResult"]>;
export type FeedbackRequest = Schemas["FeedbackRequest"];
export type FeedbackResponse = Answer<Schemas["FeedbackResponse"]>;
export type ConsolidationOptions = Schemas["ConsolidationOptions"];
export type ConsolidationReport = Answer<Schemas["ConsolidationReport"]>;
export type LinkList = Answer<Schemas["LinkList"]>;
export type HealthReport = Answer<Schemas["HealthReport"]>;

export type SessionList = Answer<Schemas["SessionList"]>;
export type SessionListQuery = Query<"/api/v1/sessions">;
export type SessionStats = Answer<Schemas["SessionStats"]>;
export type SessionDeleted = Answer<Schemas["SessionDeleted"]>;
export type ImportReport = Answer<Schemas["ImportReport"]>;
export type ErrorEnvelope = Schemas["ErrorEnvelope"];

export type FlagReport = Answer<Schemas["FlagReport"]>;
export type FlagList = Answer<Schemas["FlagList"]>;
export type FlagChange = Answer<Schemas["FlagChange"]>;
export type AuditEntry = Answer<Schemas["AuditEntry"]>;
export type AuditPage = Answer<Schemas["AuditPage"]>;
export type AuditQuery = Query<"/api/v1/control/audit">;
export type Level = Schemas["Level"];
export type EmergencyReport = Answer<Schemas["EmergencyReport"]>;
export type EmergencyChange = Answer<Schemas["EmergencyChange"]>;
export type PanicBody = PostBody<"/api/v1/control/emergency/panic">;
export type RecoverBody = PostBody<"/api/v1/control/emergency/recover">;
export type CircuitReport = Answer<Schemas["CircuitReport"]>;
export type CircuitList = Answer<Schemas["CircuitList"]>;

export type { components, paths };
export type ReembedMode = Schemas["ReembedMode"];
